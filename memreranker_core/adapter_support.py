"""The one path every framework adapter takes, so that all of them behave the same way.

An adapter only converts its framework's documents to ``(text, metadata)`` pairs and back. This module does the
rest, in two steps:

1. ``resolve_reranker`` (at construction): the adapter's settings or a shared ``MemReranker`` in, the reranker and
   the settings to keep in the adapter's own fields out. For a shared reranker those come from
   ``MemReranker.settings()``: only what its user gave, never a resolved default and never the key, so a
   serialized adapter rebuilds an equal reranker wherever it is loaded.
2. ``plan_call`` (per call): checks the per-call limits, prepends chosen metadata fields (``render_document``) and
   decides the document shape itself (texts, or ``{"text", **metadata}`` mappings for a reranker with a
   ``document_template``). ``RerankCall.run`` / ``arun`` then score, skipping the model for an empty list.

The core does the scoring, sorting, ``top_n`` and ``score_threshold``; the adapters never re-sort or filter.

Example:
    >>> from memreranker_core.adapter_support import plan_call, resolve_reranker
    >>> reranker, settings = resolve_reranker(None, {"backend": "local", "model": "/models/MemReranker-0.6B"})
    >>> settings
    {'backend': 'local', 'model': '/models/MemReranker-0.6B', 'reranker_options': {}}
    >>> call = plan_call(reranker, "When did Caroline go?", [("Went to a support group.", {"date": "7 May 2023"})],
    ...                  top_n=3, score_threshold=None, metadata_fields=["date"])
    >>> call.documents
    ('7 May 2023\\nWent to a support group.',)
    >>> results = call.run()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from memreranker_core.backends import MEMOS_API_KEY_ENV
from memreranker_core.documents import render_document
from memreranker_core.errors import ConfigurationError, InvalidInputError
from memreranker_core.reranker import MemReranker, check_count, check_threshold
from memreranker_core.types import DocumentInput, RerankResult

#: The environment variable holding the hosted service's API key (``memreranker_core.backends.MEMOS_API_KEY_ENV``).
API_KEY_ENV = MEMOS_API_KEY_ENV
#: Reranker settings every adapter takes under these names (plus ``api_key``, ``reranker_options``, ``reranker``).
SETTING_NAMES = ("backend", "model", "device", "instruction", "base_url", "api_style", "document_template")
#: Options with an adapter argument of their own, so ``reranker_options`` may not carry them.
OWN_ARGUMENTS = frozenset({"device", "base_url", "api_style", "api_key"})
#: ``MemReranker`` constructor arguments that are not backend options.
_CORE_ARGUMENTS = ("backend", "model", "instruction", "document_template")


def given_settings(
    backend: str | None,
    model: Any,
    device: str | None,
    instruction: str | None,
    base_url: str | None,
    api_style: str | None,
    document_template: str | None,
) -> dict[str, Any]:
    """An adapter's reranker settings by name (``SETTING_NAMES``), as its constructor received them.

    Example:
        >>> given_settings("hosted", None, None, None, "https://host/v1", "vllm", None)["api_style"]
        'vllm'
    """
    values = (backend, model, device, instruction, base_url, api_style, document_template)
    return dict(zip(SETTING_NAMES, values, strict=True))


def resolve_reranker(
    reranker: MemReranker | None,
    settings: Mapping[str, Any],
    *,
    api_key: Any = None,
    reranker_options: Mapping[str, Any] | None = None,
) -> tuple[MemReranker, dict[str, Any]]:
    """The reranker an adapter scores with, and the settings its own fields keep.

    Construction is cheap (the model loads on first use), so adapters call this in their constructor and bad
    settings fail early.

    Args:
        reranker: An existing reranker to share (one loaded model serving several adapters), or ``None``.
        settings: The adapter's values for ``SETTING_NAMES`` (``None``: not given).
        api_key: Hosted API key (a string or secret object); ``None`` lets the backend read ``MEMOS_API_KEY``.
            Ignored with a shared ``reranker`` (it holds its own key).
        reranker_options: Any other ``MemReranker`` option (``dtype``, ``max_length``, ``read_timeout``...).

    Returns:
        ``(reranker, settings)``: the reranker's ``settings()`` (what was given, never a default or a secret), split
        into the names of ``SETTING_NAMES`` and ``reranker_options`` (the rest).

    Raises:
        ConfigurationError: Both ``reranker`` and settings are given, ``reranker`` is not a ``MemReranker``, an
            unknown setting, or ``reranker_options`` repeats an option that has its own argument (``api_key``
            above all: it must stay out of serialized settings).
    """
    unknown = sorted(set(settings) - set(SETTING_NAMES))
    if unknown:
        raise ConfigurationError(f"unknown adapter setting(s) {unknown}; known: {list(SETTING_NAMES)}")
    options = dict(reranker_options or {})
    given = {name: value for name, value in settings.items() if value is not None}
    if reranker is not None:
        if not isinstance(reranker, MemReranker):
            raise ConfigurationError(f"reranker must be a memreranker_core.MemReranker, not {type(reranker).__name__}")
        if given or options:
            raise ConfigurationError(
                "pass either reranker=... or reranker settings, not both (got reranker and "
                f"{sorted(given) + sorted(options)}); configure the shared MemReranker itself"
            )
        return reranker, split_settings(reranker.settings())
    repeated = sorted(OWN_ARGUMENTS & set(options))
    if repeated:
        raise ConfigurationError(
            f"reranker_options must not contain {repeated}: pass them as the adapter's own arguments "
            "(api_key as a secret, which is never written into serialized settings)"
        )
    core = {name: given[name] for name in _CORE_ARGUMENTS if name in given}
    backend_options = {name: value for name, value in given.items() if name not in _CORE_ARGUMENTS}
    if api_key is not None:
        backend_options["api_key"] = api_key
    built = MemReranker(**core, **backend_options, **options)
    # Kept from the built reranker's settings(), not from what was passed: a secret option (a hub ``token``) given
    # in reranker_options must not reach the adapter's serialized fields either.
    return built, split_settings(built.settings())


def split_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``MemReranker.settings()`` as an adapter keeps them: ``SETTING_NAMES`` apart, the rest in
    ``reranker_options``."""
    own = {name: value for name, value in settings.items() if name in SETTING_NAMES}
    rest = {name: value for name, value in settings.items() if name not in SETTING_NAMES}
    return {**own, "reranker_options": rest}


def check_limits(count_name: str, count: object, score_threshold: object) -> None:
    """An adapter's count (``top_n``, ``top_k``) and threshold, checked as the core checks them."""
    check_count(count, count_name)
    check_threshold(score_threshold)


def metadata_keys(name: str, value: object) -> list[str]:
    """A list of metadata keys (``None``: none); one string is refused, not split into characters.

    Raises:
        ConfigurationError: ``value`` is a string, or not a list of strings.
    """
    if value is None:
        return []
    if isinstance(value, str):
        raise ConfigurationError(f"{name} must be a list of metadata keys, such as [{value!r}], not one string")
    if not isinstance(value, Iterable) or not all(isinstance(key, str) for key in value):
        raise ConfigurationError(f"{name} must be a list of metadata keys (strings), not {value!r}")
    return list(value)


@dataclass(frozen=True)
class RerankCall:
    """One rerank call of an adapter: the reranker, what it scores, and the limits it applies.

    Attributes:
        reranker: The reranker that scores.
        query: The query.
        documents: Per input document, the text to score (metadata fields already prepended), or a
            ``{"text": ..., **metadata}`` mapping when the reranker has a ``document_template`` to fill.
        top_n: Keep at most this many (``None``: all).
        score_threshold: Keep only scores >= this (``None``: no threshold).
    """

    reranker: MemReranker
    query: str
    documents: tuple[DocumentInput, ...]
    top_n: int | None
    score_threshold: float | None

    def run(self) -> list[RerankResult]:
        """Rerank; no documents means no call at all (the model is never touched)."""
        if not self.documents:
            return []
        return self.reranker.rerank(self.query, self.documents, top_n=self.top_n, score_threshold=self.score_threshold)

    async def arun(self) -> list[RerankResult]:
        """``run`` without blocking the event loop."""
        if not self.documents:
            return []
        return await self.reranker.arerank(
            self.query, self.documents, top_n=self.top_n, score_threshold=self.score_threshold
        )


def plan_call(
    reranker: MemReranker,
    query: str,
    items: Iterable[tuple[object, Mapping[str, Any] | None]],
    *,
    top_n: int | None,
    score_threshold: float | None,
    count_name: str = "top_n",
    metadata_fields: Sequence[str] = (),
    separator: str = "\n",
) -> RerankCall:
    """Check the limits and turn ``(text, metadata)`` pairs into what ``reranker`` scores.

    Args:
        reranker: The reranker that will score (its ``document_template`` decides the documents' shape).
        query: The query.
        items: Per document, its text and metadata.
        top_n: Resolved count (the per-call value if not ``None``, else the adapter's).
        score_threshold: Resolved threshold, in [0, 1] or ``None``.
        count_name: The adapter's name for ``top_n``, for error messages.
        metadata_fields: Metadata keys whose values are prepended to the text (the same way in every adapter).
        separator: What joins the prepended values and the text.

    Raises:
        InvalidInputError: A bad count or threshold, ``items`` is ``None``, or a document without text.
    """
    check_limits(count_name, top_n, score_threshold)
    if items is None:
        raise InvalidInputError("documents must be a list (use [] for none), not None")
    fields = metadata_keys("metadata_fields", metadata_fields)
    with_metadata = reranker.document_template is not None
    documents: list[DocumentInput] = []
    for position, (text, metadata) in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"documents[{position}] has no text content ({type(text).__name__}); MemReranker scores text, so "
                "give every document text (use '' for an empty one) or filter such documents out first"
            )
        metadata = metadata or {}
        rendered = render_document(text, metadata, metadata_fields=fields, separator=separator)
        documents.append({**metadata, "text": rendered} if with_metadata else rendered)
    return RerankCall(reranker, query, tuple(documents), top_n, score_threshold)


def pick(value: Any, default: Any) -> Any:
    """A per-call override: ``value`` unless it is ``None`` (so ``0`` and ``0.0`` do override)."""
    return value if value is not None else default


def check_documents(documents: object, document_type: type | tuple[type, ...], hint: str) -> list[Any]:
    """An adapter's input documents as a list, each of the framework's document type.

    Args:
        documents: What the caller passed.
        document_type: The framework's document class(es), e.g. LangChain's ``Document``.
        hint: How to build one, for the message (``"wrap text in Document(page_content=...)"``).

    Raises:
        InvalidInputError: ``documents`` is ``None``, a single string or document, or holds something else.
    """
    if documents is None:
        raise InvalidInputError("documents must be a list (use [] for none), not None")
    if isinstance(documents, (str, bytes, Mapping, document_type)) or not isinstance(documents, Iterable):
        raise InvalidInputError(
            f"documents must be a list of documents, not {type(documents).__name__}; wrap a single one in a list"
        )
    documents = list(documents)
    names = " or ".join(t.__name__ for t in (document_type if isinstance(document_type, tuple) else (document_type,)))
    for position, document in enumerate(documents):
        if not isinstance(document, document_type):
            raise InvalidInputError(f"documents[{position}] is {type(document).__name__}, not {names}: {hint}")
    return documents


def deduplicate(items: Sequence[Any], *, key: Any, score: Any) -> list[Any]:
    """One item per ``key(item)``, in first-seen order; of duplicates, the one with the highest ``score(item)``
    (``None`` lowest). Haystack's rankers apply this rule to documents sharing an id."""
    best: dict[Any, Any] = {}
    for item in items:
        kept = best.get(key(item))
        if kept is None or (score(item) is not None and (score(kept) is None or score(item) > score(kept))):
            best[key(item)] = item
    return list(best.values())


def model_name(reranker: MemReranker) -> str:
    """The model a reranker scores with, as frameworks report it (no secret, nothing loaded)."""
    return str(reranker.describe().get("model"))


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip


def memory_date(value: object) -> str | None:
    """A memory framework's timestamp as the date the model reads, such as ``"8 May 2023"``.

    Memory frameworks store ISO 8601 strings or datetimes (mem0 ``created_at``, MemOS ``memory_time``, Graphiti
    ``valid_at``); the model was trained on dialogue dates like ``"8 May 2023"``. The date is the one the value
    itself states (its own time zone, never converted). A string that is not ISO 8601 (``"1:56 pm on 8 May,
    2023"``) is kept as it is; ``None`` and ``""`` give ``None`` (no date to prepend).

    Example:
        >>> memory_date("2023-05-08T13:56:00-07:00")
        '8 May 2023'
    """
    from datetime import date, datetime

    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            return text
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"
    return str(value)
