"""Frozen value types shared by the core, the backends and the adapters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: A document as the core accepts it: its text, or a mapping with a ``"text"`` key plus metadata fields that a
#: ``document_template`` can use (for example ``{"text": "...", "date": "8 May 2023", "speaker": "Caroline"}``).
DocumentInput = str | Mapping[str, Any]


@dataclass(frozen=True)
class RerankResult:
    """One reranked document.

    Attributes:
        index: Position of the document in the list passed to ``rerank``.
        score: Calibrated relevance, P(yes) in [0, 1].
        document: The document's text as given (before any ``document_template``).
        logit: Raw log-odds, ``logit(yes) - logit(no)``; ``score == sigmoid(logit)``.

    Example:
        >>> RerankResult(index=2, score=0.93, document="Caroline went to the LGBTQ support group.", logit=2.59)
        RerankResult(index=2, score=0.93, document='Caroline went to the LGBTQ support group.', logit=2.59)
    """

    index: int
    score: float
    document: str
    logit: float


@dataclass(frozen=True)
class ScoreRequest:
    """What a backend scores: one query against documents, with the prompt's instruction and dialogue context.

    Attributes:
        query: The query text.
        documents: Document texts, already rendered through any ``document_template``.
        instruction: The ``<Instruct>`` line, or ``None`` for the model's default: the instruction the checkpoint
            carries, else Qwen3-Reranker's. A backend resolves ``None`` with
            ``memreranker_core.checkpoint.resolve_instruction`` and nowhere else.
        context: Prior dialogue turns, already rendered as text lines (see ``memreranker_core.prompt``).

    Example:
        >>> ScoreRequest("When did Caroline go?", ("Caroline went yesterday.",)).instruction is None  # the default
        True
    """

    query: str
    documents: tuple[str, ...]
    instruction: str | None = None
    context: tuple[str, ...] = ()
