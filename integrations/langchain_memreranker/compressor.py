"""``MemRerankerCompressor``: MemReranker as a LangChain document compressor (reranker)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from copy import deepcopy
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.utils import secret_from_env
from pydantic import ConfigDict, Field, SecretStr, StrictFloat, StrictInt

from memreranker_core import MemReranker, RerankResult
from memreranker_core.adapter_support import (
    API_KEY_ENV,
    SETTING_NAMES,
    RerankCall,
    check_documents,
    check_limits,
    metadata_keys,
    pick,
    plan_call,
    resolve_reranker,
)

logger = logging.getLogger(__name__)
_HINT = "wrap each text in langchain_core.documents.Document(page_content=...)"


class MemRerankerCompressor(BaseDocumentCompressor):
    """Reranks retrieved documents with MemReranker, on your own CPU/GPU or through a hosted ``/rerank`` service.

    Returns copies of the best documents, best first, each with ``metadata["relevance_score"]`` (P(yes) in
    [0, 1]) and its ``id`` and metadata kept; the input documents are never modified.

    Example:
        >>> from langchain_classic.retrievers import ContextualCompressionRetriever
        >>> from langchain_memreranker import MemRerankerCompressor
        >>> compressor = MemRerankerCompressor(backend="local", top_n=3, metadata_fields=["date"])
        >>> retriever = ContextualCompressionRetriever(
        ...     base_compressor=compressor, base_retriever=base
        ... )  # doctest: +SKIP
        >>> retriever.invoke("When did Caroline go to the support group?")  # doctest: +SKIP
    """

    # hide_input_in_errors: a ValidationError must not echo what was given (an api_key above all).
    model_config = ConfigDict(
        arbitrary_types_allowed=True, extra="forbid", protected_namespaces=(), hide_input_in_errors=True
    )

    backend: str | None = None
    """``"local"`` or ``"hosted"``; default from ``MEMRERANKER_BACKEND``, else local."""
    model: str | None = None
    """Hub id or local path (local), or the service's model name (hosted)."""
    device: str | None = None
    """Local device, such as ``"cuda"`` or ``"cpu"``; default CUDA if available."""
    instruction: str | None = None
    """The ``<Instruct>`` line; default the model's own."""
    api_key: SecretStr | None = Field(default_factory=secret_from_env(API_KEY_ENV, default=None), exclude=True)
    """Hosted API key; default from ``MEMOS_API_KEY``. Never shown, and left out of ``model_dump`` (a reloaded
    compressor reads ``MEMOS_API_KEY`` again)."""
    base_url: str | None = None
    """Hosted service URL; default from ``MEMOS_BASE_URL``, else the Memos API."""
    api_style: str | None = None
    """Hosted dialect: ``memos``, ``vllm``, ``jina``, ``cohere`` or ``tei``."""
    document_template: str | None = None
    """Template such as ``"[{date}] {speaker}: {text}"`` filled from each document's metadata."""
    reranker_options: dict[str, Any] = Field(default_factory=dict)
    """Other ``MemReranker`` options (``dtype``, ``max_length``, ``read_timeout``, ...)."""
    top_n: StrictInt | None = 3
    """Number of documents to return (``None``: all)."""
    score_threshold: StrictFloat | None = None
    """Drop documents scoring below this P(yes), in [0, 1]."""
    metadata_fields: list[str] = Field(default_factory=list)
    """Metadata keys whose values are prepended to the scored text (dates and speakers matter for memory)."""
    metadata_separator: str = "\n"
    """What joins the prepended metadata values and the text."""
    reranker: MemReranker | None = Field(default=None, exclude=True, repr=False)
    """An existing ``MemReranker`` to share instead of the settings above (one loaded model, many adapters)."""

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Checked after pydantic's validation, so the typed errors of memreranker_core reach the caller unwrapped.
        check_limits("top_n", self.top_n, self.score_threshold)
        self.metadata_fields = metadata_keys("metadata_fields", self.metadata_fields)
        settings = {name: getattr(self, name) for name in SETTING_NAMES}
        key = None if self.reranker is not None else self.api_key
        self.reranker, kept = resolve_reranker(
            self.reranker, settings, api_key=key, reranker_options=self.reranker_options
        )
        for name, value in kept.items():
            setattr(self, name, value)

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` against ``query``.

        Args:
            documents: The retrieved documents (left unchanged).
            query: The question.
            callbacks: Unused; accepted for the LangChain interface.
            top_n: Overrides the instance's ``top_n`` for this call (``None`` keeps it).
            score_threshold: Overrides the instance's ``score_threshold`` for this call (``0.0`` keeps every
                document).

        Returns:
            Copies of the kept documents, best first, with ``metadata["relevance_score"]``.
        """
        documents = check_documents(documents, Document, _HINT)
        call = self._plan(documents, query, top_n, score_threshold)
        return self._copies(documents, call.run())

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
    ) -> Sequence[Document]:
        """``compress_documents`` without blocking the event loop (same arguments and result)."""
        documents = check_documents(documents, Document, _HINT)
        call = self._plan(documents, query, top_n, score_threshold)
        return self._copies(documents, await call.arun())

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the key: the reranker pickles as its ``settings()``, and both read ``MEMOS_API_KEY``
        again when loaded. ``copy.deepcopy`` keeps the key and shares the loaded model."""
        state = super().__getstate__()
        return {**state, "__dict__": {**state["__dict__"], "api_key": None}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.api_key = secret_from_env(API_KEY_ENV, default=None)()

    @property
    def _reranker(self) -> MemReranker:
        assert self.reranker is not None  # set in __init__: resolve_reranker always returns one
        return self.reranker

    def _plan(
        self, documents: Sequence[Document], query: str, top_n: int | None, score_threshold: float | None
    ) -> RerankCall:
        return plan_call(
            self._reranker,
            query,
            [(document.page_content, document.metadata) for document in documents],
            top_n=pick(top_n, self.top_n),
            score_threshold=pick(score_threshold, self.score_threshold),
            metadata_fields=self.metadata_fields,
            separator=self.metadata_separator,
        )

    @staticmethod
    def _copies(documents: Sequence[Document], results: list[RerankResult]) -> list[Document]:
        return [
            documents[result.index].model_copy(
                update={"metadata": {**deepcopy(documents[result.index].metadata), "relevance_score": result.score}}
            )
            for result in results
        ]
