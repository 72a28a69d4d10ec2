"""What the LangChain, LlamaIndex and Haystack adapters share, so that all three behave the same way.

Each adapter only converts its framework's documents to ``(text, metadata)`` pairs and back. This module:

- builds the ``MemReranker`` from the adapter's settings (``build_reranker``), or takes a shared one and reports
  its secret-free settings (``reranker_settings``) so the adapter's serialized form can rebuild it;
- turns the pairs into what the core scores, prepending chosen metadata fields with ``render_document`` exactly as
  in the other adapters (``plan_call``), and checks the per-call limits;
- runs the call, sync or async, skipping the model entirely for an empty list (``RerankCall``).

The core does the scoring, sorting, ``top_n`` and ``score_threshold``; the adapters never re-sort or filter.

Example:
    >>> from memreranker_core.adapter_support import build_reranker, plan_call
    >>> reranker = build_reranker(None, backend="local", model="/models/MemReranker-0.6B")
    >>> call = plan_call("When did Caroline go?", [("Went to a support group.", {"date": "7 May 2023"})],
    ...                  top_n=3, score_threshold=None, metadata_fields=["date"])
    >>> call.documents
    ('7 May 2023\\nWent to a support group.',)
    >>> results = call.run(reranker)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from memreranker_core.documents import render_document
from memreranker_core.errors import ConfigurationError, InvalidInputError
from memreranker_core.reranker import MemReranker, check_threshold
from memreranker_core.types import DocumentInput, RerankResult

#: The environment variable holding the hosted service's API key.
API_KEY_ENV = "MEMOS_API_KEY"
#: Reranker settings every adapter takes under these names (plus ``api_key``, ``reranker_options``, ``reranker``).
SETTING_NAMES = ("backend", "model", "device", "instruction", "base_url", "api_style", "document_template")
#: Options that have their own adapter argument, so ``reranker_options`` may not carry them.
_OWN_ARGUMENTS = frozenset({"device", "base_url", "api_style", "api_key"})


def build_reranker(
    reranker: MemReranker | None,
    *,
    backend: str | None = None,
    model: str | None = None,
    device: str | None = None,
    instruction: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    api_style: str | None = None,
    document_template: str | None = None,
    reranker_options: Mapping[str, Any] | None = None,
) -> MemReranker:
    """Return ``reranker``, or a new ``MemReranker`` built from the adapter's settings.

    Construction is cheap (the model loads on first use), so adapters call this in their constructor and bad
    settings fail early.

    Args:
        reranker: An existing reranker to share (one loaded model serving several adapters), or ``None``.
        backend: ``"local"`` or ``"hosted"``; ``None`` reads ``MEMRERANKER_BACKEND``, else local.
        model: Hub id or local path (local), or the service's model name (hosted).
        device: Local device such as ``"cuda"`` or ``"cpu"``.
        instruction: The ``<Instruct>`` line.
        api_key: Hosted API key as a plain string, used only here; ``None`` lets the backend read
            ``MEMOS_API_KEY``. Ignored when ``reranker`` is given (it holds its own key).
        base_url: Hosted service URL.
        api_style: Hosted dialect (``memos``, ``vllm``, ``jina``, ``cohere``, ``tei``).
        document_template: Template such as ``"[{date}] {speaker}: {text}"`` over the documents' metadata.
        reranker_options: Any other ``MemReranker`` option (``dtype``, ``max_length``, ``read_timeout``...).

    Raises:
        ConfigurationError: Both ``reranker`` and settings are given, ``reranker`` is not a ``MemReranker``, or
            ``reranker_options`` repeats an option that has its own argument (``api_key`` above all: it must stay
            out of serialized settings).
    """
    options = dict(reranker_options or {})
    settings = {
        "backend": backend,
        "model": model,
        "device": device,
        "instruction": instruction,
        "base_url": base_url,
        "api_style": api_style,
        "document_template": document_template,
    }
    if reranker is not None:
        if not isinstance(reranker, MemReranker):
            raise ConfigurationError(f"reranker must be a memreranker_core.MemReranker, not {type(reranker).__name__}")
        given = sorted(name for name, value in settings.items() if value is not None)
        if given or options:
            raise ConfigurationError(
                "pass either reranker=... or reranker settings, not both (got reranker and "
                f"{given + sorted(options)}); configure the shared MemReranker itself"
            )
        return reranker
    repeated = sorted(_OWN_ARGUMENTS & set(options))
    if repeated:
        raise ConfigurationError(
            f"reranker_options must not contain {repeated}: pass them as the adapter's own arguments "
            "(api_key as a secret, which is never written into serialized settings)"
        )
    for name in ("device", "base_url", "api_style"):
        if settings[name] is not None:
            options[name] = settings[name]
    if api_key is not None:
        options["api_key"] = api_key
    return MemReranker(
        backend=backend, model=model, instruction=instruction, document_template=document_template, **options
    )


def reranker_settings(reranker: MemReranker) -> dict[str, Any]:
    """The secret-free settings that rebuild an equivalent reranker through ``build_reranker``.

    Returns every name of ``SETTING_NAMES`` plus ``reranker_options`` (the backend's other options that are set).
    The API key is never included.
    """
    described = reranker.describe()
    settings: dict[str, Any] = {name: described.get(name) for name in SETTING_NAMES}
    if not isinstance(settings["model"], (str, type(None))):
        settings["model"] = None
    option_names = getattr(reranker.backend, "OPTION_NAMES", frozenset()) - _OWN_ARGUMENTS
    settings["reranker_options"] = {
        name: value for name, value in described.items() if name in option_names and value is not None
    }
    return settings


def check_count(name: str, value: object) -> None:
    """Raise ``InvalidInputError`` (a ``ValueError``) unless ``value`` is ``None`` or a whole number >= 1.

    Args:
        name: The adapter's name for the count (``"top_n"``, ``"top_k"``), used in the message.
        value: The value to check.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be a whole number > 0 or None, not {type(value).__name__}")
    if value <= 0:
        raise InvalidInputError(f"{name} must be > 0, but got {value}; use None to keep every document")


@dataclass(frozen=True)
class RerankCall:
    """One rerank call of an adapter: what the core scores, and the limits it applies.

    Attributes:
        query: The query.
        documents: Per input document, the text to score (metadata fields already prepended), or a
            ``{"text": ..., **metadata}`` mapping when the reranker has a ``document_template`` to fill.
        top_n: Keep at most this many (``None``: all).
        score_threshold: Keep only scores >= this (``None``: no threshold).
    """

    query: str
    documents: tuple[DocumentInput, ...]
    top_n: int | None
    score_threshold: float | None

    def run(self, reranker: MemReranker) -> list[RerankResult]:
        """Rerank with ``reranker``; no documents means no call at all (the model is never touched)."""
        if not self.documents:
            return []
        return reranker.rerank(self.query, self.documents, top_n=self.top_n, score_threshold=self.score_threshold)

    async def arun(self, reranker: MemReranker) -> list[RerankResult]:
        """``run`` without blocking the event loop."""
        if not self.documents:
            return []
        return await reranker.arerank(
            self.query, self.documents, top_n=self.top_n, score_threshold=self.score_threshold
        )


def plan_call(
    query: str,
    items: Iterable[tuple[object, Mapping[str, Any] | None]],
    *,
    top_n: int | None,
    score_threshold: float | None,
    count_name: str = "top_n",
    metadata_fields: Sequence[str] = (),
    separator: str = "\n",
    with_metadata: bool = False,
) -> RerankCall:
    """Check the limits and turn ``(text, metadata)`` pairs into what the core scores.

    Args:
        query: The query.
        items: Per document, its text and metadata.
        top_n: Resolved count (the per-call value if not ``None``, else the adapter's).
        score_threshold: Resolved threshold, in [0, 1] or ``None``.
        count_name: The adapter's name for ``top_n``, for error messages.
        metadata_fields: Metadata keys whose values are prepended to the text (the same way in every adapter).
        separator: What joins the prepended values and the text.
        with_metadata: Pass ``{"text": ..., **metadata}`` mappings, for a reranker with a ``document_template``.

    Raises:
        InvalidInputError: A bad count or threshold, or a document without text.
    """
    check_count(count_name, top_n)
    check_threshold(score_threshold)
    if isinstance(metadata_fields, str):
        raise InvalidInputError("metadata_fields must be a list of metadata keys, not one string")
    documents: list[DocumentInput] = []
    for position, (text, metadata) in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"documents[{position}] has no text content ({type(text).__name__}); MemReranker scores text, so "
                "give every document text (use '' for an empty one) or filter such documents out first"
            )
        metadata = metadata or {}
        rendered = render_document(text, metadata, metadata_fields=metadata_fields, separator=separator)
        documents.append({**metadata, "text": rendered} if with_metadata else rendered)
    return RerankCall(query, tuple(documents), top_n, score_threshold)


def pick(value: Any, default: Any) -> Any:
    """A per-call override: ``value`` unless it is ``None`` (so ``0`` and ``0.0`` do override)."""
    return value if value is not None else default
