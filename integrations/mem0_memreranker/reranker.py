"""``MemRerankerMem0``: MemReranker as a mem0 reranker provider."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from copy import deepcopy
from typing import Any

from mem0.configs.rerankers.base import BaseRerankerConfig
from mem0.reranker.base import BaseReranker
from mem0.utils.factory import RerankerFactory
from pydantic import ConfigDict, Field, SecretStr

from memreranker_core import MemReranker, RerankResult
from memreranker_core.adapter_support import (
    SETTING_NAMES,
    RerankCall,
    check_limits,
    memory_date,
    metadata_keys,
    plan_call,
    resolve_reranker,
)
from memreranker_core.errors import ConfigurationError

logger = logging.getLogger(__name__)

#: The name ``MemoryConfig(reranker={"provider": ...})`` uses after ``register()``.
PROVIDER = "memreranker"
#: Keys holding a memory's text, in the order mem0's own rerankers read them.
TEXT_KEYS = ("memory", "text", "content")
#: Top-level keys of a mem0 search result that are not metadata for the scored text.
_NOT_METADATA = frozenset({"id", "hash", "score", "rerank_score", "metadata", "score_details", *TEXT_KEYS})


class MemRerankerMem0Config(BaseRerankerConfig):
    """The ``config`` of ``MemoryConfig(reranker={"provider": "memreranker", "config": {...}})``.

    The reranker settings have the same names as in every memreranker adapter. ``api_key`` (default from
    ``MEMOS_API_KEY``) is left out of ``model_dump`` and never shown. ``top_k`` caps what is returned: mem0
    passes its search ``top_k``, and the smaller of the two wins, so ``Memory.search(q, top_k=50, rerank=True)``
    with ``top_k=5`` here reranks 50 candidates and returns the best 5.

    Example:
        >>> MemRerankerMem0Config(backend="hosted", top_k=5).model_dump()["top_k"]
        5
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", protected_namespaces=())

    backend: str | None = None
    device: str | None = None
    instruction: str | None = None
    base_url: str | None = None
    api_style: str | None = None
    document_template: str | None = None
    reranker_options: dict[str, Any] = Field(default_factory=dict)
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)  # type: ignore[assignment]
    score_threshold: float | None = None
    # Not list[str]: one string must reach metadata_keys, whose typed error names the fix, not be split by pydantic.
    metadata_fields: list[str] | str | None = Field(default_factory=lambda: ["date", "speaker"])
    metadata_separator: str = "\n"
    reranker: MemReranker | None = Field(default=None, exclude=True, repr=False)


class MemRerankerMem0(BaseReranker):
    """Reranks mem0 memories with MemReranker, on your own CPU/GPU or through a hosted ``/rerank`` service.

    Returns copies of the memory dicts, best first, each with ``rerank_score`` = P(yes) in [0, 1] (mem0's own
    ``score`` is kept); the input memories are never modified. The scored text is the memory with its date
    (``metadata["date"]``, else ``created_at`` as ``"8 May 2023"``) and speaker (``metadata["speaker"]``, else
    ``actor_id``) prepended, by default.

    Args:
        config: A ``MemRerankerMem0Config`` or its fields as a mapping (mem0's factory passes the config).
        **settings: Config fields, when ``config`` is ``None`` or a mapping.

    Example:
        >>> from mem0_memreranker import MemRerankerMem0
        >>> reranker = MemRerankerMem0(backend="local", top_k=3)
        >>> reranker.rerank("When did Caroline go?", memory.search("support group", filters=f)["results"])
        ... # doctest: +SKIP
    """

    def __init__(self, config: MemRerankerMem0Config | Mapping[str, Any] | None = None, **settings: Any) -> None:
        if config is None or isinstance(config, Mapping):
            config = MemRerankerMem0Config(**{**(config or {}), **settings})
        elif not isinstance(config, MemRerankerMem0Config) or settings:
            raise ConfigurationError(
                f"config must be a MemRerankerMem0Config or a mapping of its fields, not {type(config).__name__} "
                "(with keyword settings, pass no config object)"
            )
        check_limits("top_k", config.top_k, config.score_threshold)
        fields = metadata_keys("metadata_fields", config.metadata_fields)
        shared = config.reranker
        self.reranker, kept = resolve_reranker(
            shared,
            {name: getattr(config, name) for name in SETTING_NAMES},
            api_key=None if shared is not None else config.api_key,
            reranker_options=config.reranker_options,
        )
        #: The settings as kept (a shared reranker's public ones); ``config.model_dump()`` rebuilds an equal one.
        self.config = config.model_copy(update={**kept, "metadata_fields": fields, "reranker": None, "api_key": None})

    def rerank(self, query: str, documents: list[dict[str, Any]], top_k: int | None = None) -> list[dict[str, Any]]:
        """Rerank mem0 memories (the dicts ``Memory.search`` returns) against ``query``.

        Args:
            query: The question.
            documents: Memory dicts, each with its text under ``memory`` (left unchanged).
            top_k: At most this many (mem0 passes its search ``top_k``); the config's ``top_k`` caps it too.

        Returns:
            Copies of the kept memories, best first, with ``rerank_score``.

        Raises:
            InvalidInputError: A memory without text, or a bad ``top_k``.
            BackendError: The backend failed (``Memory.search`` itself logs it and returns mem0's order).
        """
        return self._copies(documents, self._plan(query, documents, top_k).run())

    async def arerank(
        self, query: str, documents: list[dict[str, Any]], top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """``rerank`` without blocking the event loop (``AsyncMemory`` itself runs ``rerank`` in a thread)."""
        return self._copies(documents, await self._plan(query, documents, top_k).arun())

    def _plan(self, query: str, documents: Sequence[Mapping[str, Any]] | None, top_k: int | None) -> RerankCall:
        check_limits("top_k", top_k, None)
        cap = self.config.top_k
        limit = cap if top_k is None else top_k if cap is None else min(top_k, cap)
        items = None if documents is None else [(memory_text(d), memory_metadata(d)) for d in documents]
        return plan_call(
            self.reranker,
            query,
            items,  # type: ignore[arg-type]  # None is refused by plan_call with a typed error
            top_n=limit,
            score_threshold=self.config.score_threshold,
            count_name="top_k",
            metadata_fields=self.config.metadata_fields,
            separator=self.config.metadata_separator,
        )

    @staticmethod
    def _copies(documents: Sequence[Mapping[str, Any]], results: list[RerankResult]) -> list[dict[str, Any]]:
        return [{**deepcopy(dict(documents[result.index])), "rerank_score": result.score} for result in results]


def memory_text(memory: object) -> object:
    """A mem0 memory's text (``memory``, else ``text`` or ``content``); ``None`` when it has none."""
    if not isinstance(memory, Mapping):
        return None
    return next((memory[key] for key in TEXT_KEYS if isinstance(memory.get(key), str)), None)


def memory_metadata(memory: object) -> dict[str, Any]:
    """The fields a memory's scored text can use: its top-level fields, its ``metadata``, ``date`` and ``speaker``."""
    if not isinstance(memory, Mapping):
        return {}
    fields = {key: value for key, value in memory.items() if key not in _NOT_METADATA}
    own = memory.get("metadata")
    if isinstance(own, Mapping):
        fields.update(own)
    fields["date"] = memory_date(fields.get("date")) or memory_date(memory.get("created_at"))
    if fields.get("speaker") in (None, ""):
        fields["speaker"] = memory.get("actor_id")
    return {key: value for key, value in fields.items() if value is not None}


def register(name: str = PROVIDER) -> None:
    """Let ``MemoryConfig(reranker={"provider": name, "config": {...}})`` build a ``MemRerankerMem0``.

    mem0 looks reranker providers up in ``RerankerFactory.provider_to_class`` and has no plugin hook for them,
    so this adds the entry (idempotent). Call it once before ``Memory(...)`` / ``Memory.from_config(...)``.
    """
    RerankerFactory.provider_to_class[name] = (f"{__name__}.MemRerankerMem0", MemRerankerMem0Config)
    logger.debug("registered mem0 reranker provider %r", name)
