"""``MemRerankerAgno``: MemReranker as an Agno knowledge reranker."""

from __future__ import annotations

from copy import copy, deepcopy
from dataclasses import replace
from typing import Any

from agno.knowledge.document import Document
from agno.knowledge.reranker.base import Reranker
from pydantic import ConfigDict, Field, SecretStr, StrictFloat, StrictInt

from memreranker_core import MemReranker, RerankResult
from memreranker_core.adapter_support import (
    SETTING_NAMES,
    RerankCall,
    check_documents,
    check_limits,
    metadata_keys,
    plan_call,
    resolve_reranker,
)

_HINT = "wrap each text in agno.knowledge.document.Document(content=...)"


class MemRerankerAgno(Reranker):
    """Reranks Agno ``Knowledge`` search results with MemReranker, on your own CPU/GPU or a hosted ``/rerank`` service.

    Returns copies of the documents, best first, each with ``reranking_score`` = P(yes) in [0, 1]; the input
    documents are never modified. Agno's ``limit`` (the search's ``max_results``) and ``top_n`` cap what is returned
    (the smaller wins). ``candidate_multiplier`` and ``max_candidates`` (Agno's, default 3 and 100) set how many
    candidates ``Knowledge`` fetches for it: ``max_results * 3``, at most 100. ``api_key`` (default from
    ``MEMOS_API_KEY``) is never shown and left out of ``model_dump``.

    Example:
        >>> from agno.knowledge.knowledge import Knowledge
        >>> from agno_memreranker import MemRerankerAgno
        >>> reranker = MemRerankerAgno(backend="local", metadata_fields=["date", "speaker"])
        >>> knowledge = Knowledge(vector_db=vector_db, reranker=reranker, max_results=5)  # doctest: +SKIP
        >>> knowledge.search("When did Caroline go to the support group?")  # doctest: +SKIP
    """

    # hide_input_in_errors: a ValidationError must not echo what was given (an api_key above all).
    model_config = ConfigDict(
        arbitrary_types_allowed=True, extra="forbid", protected_namespaces=(), hide_input_in_errors=True
    )

    backend: str | None = None
    model: str | None = None
    device: str | None = None
    instruction: str | None = None
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    base_url: str | None = None
    api_style: str | None = None
    document_template: str | None = None
    reranker_options: dict[str, Any] = Field(default_factory=dict)
    top_n: StrictInt | None = None
    score_threshold: StrictFloat | None = None
    # Not list[str]: one string must reach metadata_keys, whose typed error names the fix, not pydantic's.
    metadata_fields: list[str] | str | None = Field(default_factory=list)
    metadata_separator: str = "\n"
    reranker: MemReranker | None = Field(default=None, exclude=True, repr=False)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Checked after pydantic's validation, so the typed errors of memreranker_core reach the caller unwrapped.
        check_limits("top_n", self.top_n, self.score_threshold)
        self.metadata_fields = metadata_keys("metadata_fields", self.metadata_fields)
        key = None if self.reranker is not None else self.api_key
        settings = {name: getattr(self, name) for name in SETTING_NAMES}
        self.reranker, kept = resolve_reranker(
            self.reranker, settings, api_key=key, reranker_options=self.reranker_options
        )
        for name, value in kept.items():
            setattr(self, name, value)
        self.api_key = None  # used once to build the reranker; a copy or pickle reads MEMOS_API_KEY again

    def rerank(self, query: str, documents: list[Document], limit: int | None = None) -> list[Document]:
        """Rerank ``documents`` against ``query``.

        Args:
            query: The question.
            documents: Agno documents, scored on ``content`` (left unchanged).
            limit: At most this many (``Knowledge`` passes ``max_results``); ``top_n`` caps it too.

        Returns:
            Copies of the kept documents, best first, with ``reranking_score``.

        Raises:
            InvalidInputError: A bad document list or ``limit`` (a ``ValueError``: ``Knowledge.search`` raises it).
            BackendError: The backend failed (``Knowledge.search`` logs it and returns the vector db's order).
        """
        return self._copies(documents, self._plan(query, documents, limit).run())

    async def arerank(self, query: str, documents: list[Document], limit: int | None = None) -> list[Document]:
        """``rerank`` without blocking the event loop (the hosted call is async; the local model runs in a worker)."""
        return self._copies(documents, await self._plan(query, documents, limit).arun())

    def _plan(self, query: str, documents: Any, limit: int | None) -> RerankCall:
        check_limits("limit", limit, None)
        documents = check_documents(documents, Document, _HINT)
        top_n = self.top_n if limit is None else limit if self.top_n is None else min(limit, self.top_n)
        assert self.reranker is not None  # set in __init__
        return plan_call(
            self.reranker,
            query,
            [(document.content, document.meta_data) for document in documents],
            top_n=top_n,
            score_threshold=self.score_threshold,
            metadata_fields=self.metadata_fields,
            separator=self.metadata_separator,
        )

    @staticmethod
    def _copies(documents: list[Document], results: list[RerankResult]) -> list[Document]:
        copies = []
        for result in results:
            document = documents[result.index]  # the embedder is shared; what a caller may change is copied
            copies.append(
                replace(
                    document,
                    meta_data=deepcopy(document.meta_data),
                    embedding=copy(document.embedding),
                    usage=deepcopy(document.usage),
                    reranking_score=result.score,
                )
            )
        return copies
