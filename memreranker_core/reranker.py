"""``MemReranker``: the one object every adapter, the CLI and the evaluation use."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memreranker_core.backends import ScoringBackend, create_backend
from memreranker_core.cancellation import run_in_thread
from memreranker_core.documents import check_text, render_document, split_document, template_fields
from memreranker_core.errors import ConfigurationError, InvalidInputError
from memreranker_core.prompt import render_context_turn
from memreranker_core.types import DocumentInput, RerankResult, ScoreRequest

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11; type checkers bundle typing_extensions

    from memreranker_core.backends.keywords import OptionKeywords

logger = logging.getLogger(__name__)

BACKEND_ENV = "MEMRERANKER_BACKEND"
DEFAULT_BACKEND = "local"

ContextInput = Sequence["str | Mapping[str, Any]"]


def sigmoid(logit: float) -> float:
    """Numerically stable logistic function; ``sigmoid(inf) == 1.0``."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    exp = math.exp(logit)
    return exp / (1.0 + exp)


class MemReranker:
    """Scores (query, document) pairs with MemReranker's yes/no head, locally or through a hosted API.

    ``backend`` is the one flag that switches between your own CPU/GPU (``"local"``, the default, so private
    memories never leave the machine unless you ask) and a hosted ``/rerank`` service (``"hosted"``). Construction
    is cheap: the model loads, or the HTTP session opens, on first use or ``warm_up()``.

    Args:
        backend: ``"local"`` or ``"hosted"``; default from ``MEMRERANKER_BACKEND``, else ``"local"``.
        model: Local: a hub id, a local path (default ``MEMRERANKER_MODEL``, else ``IAAR-Shanghai/MemReranker-4B``)
            or a loaded sentence-transformers ``CrossEncoder``. Hosted: the service's model name.
        instruction: The ``<Instruct>`` line; ``None`` (the default): the model's default, that is the checkpoint's
            own (``config_sentence_transformers.json``), else Qwen3-Reranker's web-search instruction.
        context: Prior dialogue turns (strings or ``{"role", "content"}`` mappings) placed before the query; see
            ``memreranker_core.prompt`` for the exact text.
        document_template: Optional template such as ``"[{date}] {speaker}: {text}"`` applied to documents given
            as ``{"text": ..., **metadata}`` mappings.
        **options: Backend options, typed by ``OptionKeywords`` (``memreranker_core.backends.keywords``): the
            fields of ``LocalOptions`` (``device``, ``dtype``, ``max_length``, ...) and ``HostedOptions``
            (``api_key``, ``base_url``, ``api_style``, time limits, retries, request limits, ...); tables in the
            README and ``docs/serving.md``. Options of the backend not chosen are ignored; unknown ones raise
            ``ConfigurationError``.

    Example:
        >>> from memreranker_core import MemReranker
        >>> rr = MemReranker()  # local; nothing loads yet
        >>> results = rr.rerank("What does Caroline do?", ["Caroline is a counselor.", "It rained."], top_n=1)
        ... # doctest: +SKIP
        >>> results[0].index, round(results[0].score, 2)  # doctest: +SKIP
        (0, 0.97)
    """

    def __init__(
        self,
        backend: str | None = None,
        model: Any = None,
        *,
        instruction: str | None = None,
        context: ContextInput | None = None,
        document_template: str | None = None,
        **options: Unpack[OptionKeywords],
    ) -> None:
        name = backend if backend is not None else os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
        if not isinstance(name, str):
            raise ConfigurationError(f"backend must be 'local' or 'hosted', not {type(name).__name__}")
        self.backend_name = name.strip().lower()
        self.instruction = _check_instruction(instruction)
        self.context = _render_context(context)
        if document_template is not None:
            if not isinstance(document_template, str):
                raise ConfigurationError("document_template must be a string like '[{date}] {speaker}: {text}'")
            template_fields(document_template)
        self.document_template = document_template
        self._backend: ScoringBackend
        self._backend, self._other_options = create_backend(self.backend_name, model, options)
        self._given = {
            name: value
            for name, value in (
                ("backend", backend),
                ("model", os.fspath(model) if isinstance(model, (str, os.PathLike)) else None),
                ("instruction", instruction),
                ("context", list(self.context) if context is not None else None),
                ("document_template", document_template),
            )
            if value is not None
        }

    # ----------------------------------------------------------------- public API
    def score(
        self,
        query: str,
        documents: Sequence[DocumentInput],
        *,
        instruction: str | None = None,
        context: ContextInput | None = None,
        return_logits: bool = False,
    ) -> list[float]:
        """Score each document against ``query``.

        Args:
            query: The question.
            documents: Texts, or ``{"text": ..., **metadata}`` mappings (rendered with ``document_template``).
            instruction: Overrides the instance's instruction for this call.
            context: Overrides the instance's dialogue context for this call (``[]`` clears it).
            return_logits: Return raw log-odds instead of probabilities.

        Returns:
            P(yes) in [0, 1] per document (or log-odds), in input order. ``[]`` for no documents, without loading
            the model.
        """
        request = self._request(query, self.split_documents(documents), instruction, context)
        logits = self._checked(request, self._backend.score(request) if request.documents else [])
        return logits if return_logits else [sigmoid(value) for value in logits]

    def rerank(
        self,
        query: str,
        documents: Sequence[DocumentInput],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
        instruction: str | None = None,
        context: ContextInput | None = None,
    ) -> list[RerankResult]:
        """Score and sort documents, best first (ties keep input order), then apply the threshold and ``top_n``.

        Args:
            query: The question.
            documents: Texts or ``{"text": ..., **metadata}`` mappings.
            top_n: Keep at most this many (``None``: all); must be at least 1.
            score_threshold: Keep only documents whose P(yes) is at least this, in [0, 1].
            instruction: Overrides the instance's instruction for this call.
            context: Overrides the instance's dialogue context for this call.

        Returns:
            ``RerankResult`` per kept document, with its input ``index``, ``score``, text and ``logit``.
        """
        check_top_n(top_n)
        check_threshold(score_threshold)
        split = self.split_documents(documents)
        request = self._request(query, split, instruction, context)
        logits = self._checked(request, self._backend.score(request) if request.documents else [])
        return _ranked(split, logits, top_n, score_threshold)

    async def ascore(
        self,
        query: str,
        documents: Sequence[DocumentInput],
        *,
        instruction: str | None = None,
        context: ContextInput | None = None,
        return_logits: bool = False,
    ) -> list[float]:
        """``score`` without blocking the event loop. The hosted backend is async-native (no thread per call);
        the local one runs in a worker thread. Cancelling the awaiting task stops the call: a hosted call's
        requests in flight are aborted, a local call stops at its next batch."""
        request = self._request(query, self.split_documents(documents), instruction, context)
        logits = self._checked(request, await self._ascore(request))
        return logits if return_logits else [sigmoid(value) for value in logits]

    async def arerank(
        self,
        query: str,
        documents: Sequence[DocumentInput],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
        instruction: str | None = None,
        context: ContextInput | None = None,
    ) -> list[RerankResult]:
        """``rerank`` without blocking the event loop (see ``ascore``)."""
        check_top_n(top_n)
        check_threshold(score_threshold)
        split = self.split_documents(documents)
        request = self._request(query, split, instruction, context)
        return _ranked(split, self._checked(request, await self._ascore(request)), top_n, score_threshold)

    async def _ascore(self, request: ScoreRequest) -> list[float]:
        """The backend's log-odds for ``request``: its native ``ascore`` if it has one, else ``score`` in a worker
        thread (``run_in_thread``: a cancelled caller's call stops at its next step)."""
        if not request.documents:
            return []
        native = getattr(self._backend, "ascore", None)
        if native is not None:
            return list(await native(request))
        return await run_in_thread(self._backend.score, request)

    def warm_up(self) -> MemReranker:
        """Load the model (local) or open the session (hosted) now rather than on the first call."""
        self._backend.warm_up()
        return self

    def close(self) -> None:
        """Release the backend's resources."""
        self._backend.close()

    def __enter__(self) -> MemReranker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- copies and pickles
    def __copy__(self) -> MemReranker:
        """A reranker with the same settings that shares this one's backend (one loaded model, one session)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._given = dict(self._given)
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> MemReranker:
        """Like ``copy.copy``: the loaded model is shared, never duplicated (what LangChain, LlamaIndex and Haystack
        expect when they copy a component)."""
        clone = self.__copy__()
        memo[id(self)] = clone
        return clone

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle ``settings()`` only: never the key (the unpickled reranker reads ``MEMOS_API_KEY`` again), the
        model or a session; the model loads again on first use.

        Raises:
            TypeError: The reranker was built from a loaded model object, which its settings cannot name.
        """
        if "model" not in self._given and not isinstance(self._backend.model_ref, (str, type(None))):
            raise TypeError(
                "cannot pickle a MemReranker built from a loaded model object; build it from a hub id or a local "
                "path to pickle it"
            )
        return (_from_settings, (self.settings(),))

    @property
    def backend(self) -> ScoringBackend:
        """The backend object (``LocalBackend`` or ``HostedBackend``)."""
        return self._backend

    def settings(self) -> dict[str, Any]:
        """What the user gave, and only that: no resolved default, no secret. The one thing serialized.

        ``MemReranker(**rr.settings())`` builds an equal reranker (the key comes from the environment again).
        Options meant for the other backend are kept, so switching ``backend`` in a saved config still works.

        Example:
            >>> MemReranker(backend="hosted", base_url="https://host/v1?x=1", api_key="sk-1").settings()
            {'backend': 'hosted', 'base_url': 'https://host/v1?x=1'}
        """
        from memreranker_core.backends import public_settings

        return {**self._given, **self._backend.options.settings(), **public_settings(self._other_options)}

    def describe(self) -> dict[str, Any]:
        """Every setting in force (defaults resolved), secret-free: for ``repr`` and logs, never serialized."""
        return {
            "backend": self.backend_name,
            **self._backend.describe(),
            "instruction": self.instruction,
            "document_template": self.document_template,
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.describe().items() if value is not None)
        return f"MemReranker({settings})"

    # ----------------------------------------------------------------- internals
    def split_documents(self, documents: Sequence[DocumentInput]) -> list[tuple[str, Mapping[str, Any]]]:
        """Each document as ``(text, metadata)``, checked once.

        Raises:
            InvalidInputError: ``documents`` is not a list, or a document is ``None`` or has no text.
        """
        if isinstance(documents, (str, bytes, Mapping)) or not isinstance(documents, Sequence):
            raise InvalidInputError(
                f"documents must be a list of strings (or text mappings), not {type(documents).__name__}; "
                "wrap a single document in a list"
            )
        return [split_document(document, position) for position, document in enumerate(documents)]

    def _render(self, split: Sequence[tuple[str, Mapping[str, Any]]]) -> tuple[str, ...]:
        return tuple(render_document(text, metadata, template=self.document_template) for text, metadata in split)

    def _request(
        self,
        query: str,
        split: Sequence[tuple[str, Mapping[str, Any]]],
        instruction: str | None,
        context: ContextInput | None,
    ) -> ScoreRequest:
        """What the backend scores; the query and instruction checked, the documents rendered."""
        check_query(query)
        return ScoreRequest(
            query=query,
            documents=self._render(split),
            instruction=_check_instruction(instruction) or self.instruction,  # None: the model's default
            context=self.context if context is None else _render_context(context),
        )

    @staticmethod
    def _checked(request: ScoreRequest, logits: Sequence[float]) -> list[float]:
        """The backend's log-odds as floats, one per document, or ``RuntimeError``."""
        if len(logits) != len(request.documents):  # a backend bug must never shift scores onto other documents
            raise RuntimeError(f"backend returned {len(logits)} scores for {len(request.documents)} documents")
        return [float(value) for value in logits]


def _ranked(
    split: Sequence[tuple[str, Mapping[str, Any]]],
    logits: Sequence[float],
    top_n: int | None,
    score_threshold: float | None,
) -> list[RerankResult]:
    """``RerankResult`` per document, best first, threshold and ``top_n`` applied."""
    texts = [text for text, _metadata in split]
    return select([RerankResult(i, sigmoid(v), texts[i], v) for i, v in enumerate(logits)], top_n, score_threshold)


def _from_settings(settings: dict[str, Any]) -> MemReranker:
    """Unpickle a ``MemReranker`` from its ``settings()``."""
    return MemReranker(**settings)


def select(results: list[RerankResult], top_n: int | None, score_threshold: float | None) -> list[RerankResult]:
    """Sort best first (stable, so ties keep input order), keep scores >= threshold, then the first ``top_n``."""
    ranked = sorted(results, key=lambda result: -result.score)
    if score_threshold is not None:
        ranked = [result for result in ranked if result.score >= score_threshold]
    return ranked if top_n is None else ranked[:top_n]


def check_query(query: object) -> None:
    """Raise ``InvalidInputError`` unless ``query`` is a non-blank string."""
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string, not {type(query).__name__}")
    if not query.strip():
        raise InvalidInputError("query is empty; pass the question the documents should answer")
    check_text(query, "the query")


def check_count(value: object, name: str = "top_n") -> None:
    """Raise ``InvalidInputError`` (a ``ValueError``) unless ``value`` is ``None`` or a whole number >= 1.

    One check for the core's ``top_n`` and every adapter's count (``top_n``, Haystack's ``top_k``), worded as
    Haystack's own rankers word it.

    Args:
        value: The count.
        name: Its name in the caller's API, for the message.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be a whole number > 0 or None, not {type(value).__name__}")
    if value <= 0:
        raise InvalidInputError(f"{name} must be > 0, but got {value}; use None to keep every document")


def check_top_n(top_n: object) -> None:
    """``check_count`` for the core's ``top_n``."""
    check_count(top_n, "top_n")


def check_threshold(score_threshold: object) -> None:
    """Raise ``InvalidInputError`` unless ``score_threshold`` is ``None`` or a number in [0, 1]."""
    if score_threshold is None:
        return
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)):
        raise InvalidInputError(
            f"score_threshold must be a number in [0, 1] or None, not {type(score_threshold).__name__}"
        )
    if not 0.0 <= float(score_threshold) <= 1.0:
        raise InvalidInputError(
            f"score_threshold must be in [0, 1] (got {score_threshold}): scores are probabilities P(yes)"
        )


def _check_instruction(instruction: object) -> str | None:
    if instruction is None:
        return None
    if not isinstance(instruction, str) or not instruction.strip():
        raise InvalidInputError("instruction must be a non-empty string, or None for the model's default")
    return check_text(instruction, "the instruction")


def _render_context(context: object) -> tuple[str, ...]:
    if context is None:
        return ()
    if isinstance(context, (str, bytes, Mapping)) or not isinstance(context, Sequence):
        raise InvalidInputError(
            f"context must be a list of prior dialogue turns (strings or {{'role', 'content'}} mappings), "
            f"not {type(context).__name__}"
        )
    try:
        return tuple(
            check_text(render_context_turn(turn), f"context turn {position}") for position, turn in enumerate(context)
        )
    except TypeError as exc:
        raise InvalidInputError(str(exc)) from exc
