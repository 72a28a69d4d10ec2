"""``MemRerankerRanker``: MemReranker as a Haystack ranker component."""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import Secret, deserialize_secrets_inplace
from haystack.utils.auth import SecretType

from memreranker_core import MemReranker, RerankResult
from memreranker_core.adapter_support import (
    API_KEY_ENV,
    SETTING_NAMES,
    RerankCall,
    check_documents,
    check_limits,
    deduplicate,
    given_settings,
    metadata_keys,
    model_name,
    pick,
    plan_call,
    resolve_reranker,
)
from memreranker_core.errors import ConfigurationError, InvalidInputError

logger = logging.getLogger(__name__)


@component
class MemRerankerRanker:
    """Ranks documents with MemReranker, on your own CPU/GPU or through a hosted ``/rerank`` service.

    Documents with the same id are ranked once (the copy with the highest score is kept); a document without
    content is scored as empty text, as Haystack's own rankers do. The output holds copies
    (``dataclasses.replace``) of the best ``top_k`` documents, best first, with ``score`` = P(yes) in [0, 1]
    (log-odds with ``scale_score=False``), and ``meta`` with the ``model`` and ``backend`` that scored them; the
    input documents are never modified.

    Args:
        backend: ``"local"`` or ``"hosted"``; default from ``MEMRERANKER_BACKEND``, else local.
        model: Hub id or local path (local), or the service's model name (hosted).
        device: Local device such as ``"cuda"`` or ``"cpu"``; default CUDA if available.
        instruction: The ``<Instruct>`` line; default the model's own.
        api_key: Hosted API key as a ``Secret`` (``Secret.from_env_var`` or ``Secret.from_token``), by default
            ``MEMOS_API_KEY``; serialized as the env-var reference only.
        base_url: Hosted service URL; default from ``MEMOS_BASE_URL``, else the Memos API.
        api_style: Hosted dialect: ``memos``, ``vllm``, ``jina``, ``cohere`` or ``tei``.
        document_template: Template such as ``"[{date}] {speaker}: {text}"`` filled from each document's meta.
        reranker_options: Other ``MemReranker`` options (``dtype``, ``max_length``, ``read_timeout``, ...).
        top_k: Number of documents to return (must be > 0).
        score_threshold: Drop documents scoring below this P(yes), in [0, 1] (also with ``scale_score=False``).
        scale_score: ``True``: ``Document.score`` is P(yes); ``False``: the raw log-odds ``logit(yes) - logit(no)``.
        meta_fields_to_embed: Meta keys whose values are prepended to the scored text.
        embedding_separator: What joins the prepended meta values and the content.
        reranker: An existing ``MemReranker`` to share instead of the settings above (one loaded model); ``close``
            leaves a shared reranker to its owner.

    Example:
        >>> from haystack import Pipeline
        >>> from haystack_integrations.components.rankers.memreranker import MemRerankerRanker
        >>> pipeline = Pipeline()
        >>> _ = pipeline.add_component("ranker", MemRerankerRanker(backend="local", meta_fields_to_embed=["date"]))
        >>> pipeline.run({"ranker": {"query": "When did Caroline go?", "documents": docs}})  # doctest: +SKIP
    """

    def __init__(
        self,
        backend: str | None = None,
        model: str | None = None,
        device: str | None = None,
        instruction: str | None = None,
        api_key: Secret = Secret.from_env_var(API_KEY_ENV, strict=False),  # noqa: B008
        base_url: str | None = None,
        api_style: str | None = None,
        document_template: str | None = None,
        reranker_options: dict[str, Any] | None = None,
        top_k: int = 10,
        score_threshold: float | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        scale_score: bool = True,
        reranker: MemReranker | None = None,
    ) -> None:
        check_limits("top_k", top_k, score_threshold)
        if api_key is not None and not isinstance(api_key, Secret):
            raise ConfigurationError(
                f"api_key must be a haystack Secret, not {type(api_key).__name__}: use "
                f"Secret.from_env_var({API_KEY_ENV!r}) (serializable) or Secret.from_token(...)"
            )
        self._owns_reranker = reranker is None
        settings = given_settings(backend, model, device, instruction, base_url, api_style, document_template)
        self.reranker, kept = resolve_reranker(
            reranker,
            settings,
            api_key=None if reranker is not None else api_key,
            reranker_options=reranker_options,
        )
        for name in SETTING_NAMES:
            setattr(self, name, kept.get(name))
        self.reranker_options = kept["reranker_options"]
        self.api_key = api_key
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.meta_fields_to_embed = metadata_keys("meta_fields_to_embed", meta_fields_to_embed)
        self.embedding_separator = embedding_separator
        self.scale_score = scale_score

    def warm_up(self) -> None:
        """Load the model (local) or open the HTTP session (hosted) before the first run."""
        self.reranker.warm_up()

    async def warm_up_async(self) -> None:
        """``warm_up`` without blocking the event loop."""
        await asyncio.to_thread(self.warm_up)

    def close(self) -> None:
        """Release the model or HTTP session of a reranker this ranker built (a shared one is left open)."""
        if self._owns_reranker:
            self.reranker.close()

    async def close_async(self) -> None:
        """``close`` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    def __deepcopy__(self, memo: dict[int, Any]) -> MemRerankerRanker:
        """A copy that shares the loaded model (``MemReranker`` copies share their backend)."""
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return clone

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the key: a token secret becomes the ``MEMOS_API_KEY`` reference, and the reranker
        pickles as its ``settings()``."""
        state = dict(self.__dict__)
        if self.api_key is not None and self.api_key.type is SecretType.TOKEN:
            state["api_key"] = Secret.from_env_var(API_KEY_ENV, strict=False)
        return state

    def to_dict(self) -> dict[str, Any]:
        """Serialize every parameter; the API key as its env-var reference only (a token secret is refused)."""
        return default_to_dict(
            self,
            **{name: getattr(self, name) for name in SETTING_NAMES},
            api_key=self.api_key.to_dict() if self.api_key is not None else None,
            reranker_options=self.reranker_options,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            scale_score=self.scale_score,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemRerankerRanker:
        """Rebuild a ranker from ``to_dict`` output (``data`` itself is left unchanged)."""
        data = {**data, "init_parameters": dict(data.get("init_parameters", {}))}
        deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
        scale_score: bool | None = None,
    ) -> dict[str, Any]:
        """Rank ``documents`` by relevance to ``query``.

        Args:
            query: The question.
            documents: Documents to rank (left unchanged).
            top_k: Overrides the instance's ``top_k`` for this run (must be > 0).
            score_threshold: Overrides the instance's ``score_threshold`` for this run (``0.0`` keeps all).
            scale_score: Overrides the instance's ``scale_score`` for this run (``False``: raw log-odds), as
                Haystack's sentence-transformers rankers take it per run.

        Returns:
            ``{"documents": [...], "meta": {"model": ..., "backend": ...}}``: copies of the kept documents, best
            first, with ``score`` set.

        Raises:
            ValueError: ``top_k`` is not > 0, ``score_threshold`` is outside [0, 1], or ``scale_score`` is not a
                bool.
        """
        scale = self._scale(scale_score)
        unique, call = self._plan(query, documents, top_k, score_threshold)
        return self._output(unique, call.run(), scale)

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    async def run_async(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
        scale_score: bool | None = None,
    ) -> dict[str, Any]:
        """``run`` without blocking the event loop (same arguments and result)."""
        scale = self._scale(scale_score)
        unique, call = self._plan(query, documents, top_k, score_threshold)
        return self._output(unique, await call.arun(), scale)

    def _scale(self, scale_score: bool | None) -> bool:
        """This run's ``scale_score``: the argument, else the instance's."""
        if scale_score is None:
            return self.scale_score
        if not isinstance(scale_score, bool):
            raise InvalidInputError(f"scale_score must be True, False or None, not {type(scale_score).__name__}")
        return scale_score

    def _plan(
        self, query: str, documents: list[Document], top_k: int | None, score_threshold: float | None
    ) -> tuple[list[Document], RerankCall]:
        checked = check_documents(documents, Document, "wrap each text in haystack.Document(content=...)")
        unique = deduplicate(checked, key=lambda document: document.id, score=lambda document: document.score)
        call = plan_call(
            self.reranker,
            query,
            [(document.content or "", document.meta) for document in unique],
            top_n=pick(top_k, self.top_k),
            score_threshold=pick(score_threshold, self.score_threshold),
            count_name="top_k",
            metadata_fields=self.meta_fields_to_embed,
            separator=self.embedding_separator,
        )
        return unique, call

    def _output(self, documents: list[Document], results: list[RerankResult], scale: bool) -> dict[str, Any]:
        scored = [replace(documents[result.index], score=result.score if scale else result.logit) for result in results]
        return {
            "documents": scored,
            "meta": {"model": model_name(self.reranker), "backend": self.reranker.backend_name},
        }
