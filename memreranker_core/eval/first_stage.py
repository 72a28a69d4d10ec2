"""First-stage retrieval: pick each question's candidates from its conversation's turns.

Only BM25 exists for now; ``create_first_stage(name)`` validates the name so that other first stages (dense
retrieval, a memory system's own search) can be added under their own names.

Example:
    >>> stage = create_first_stage("bm25")  # doctest: +SKIP
    >>> index = stage.index(["Caroline: I went to a support group.", "Melanie: I painted a lake."])  # doctest: +SKIP
    >>> index.rank("Where did Caroline go?", k=1)  # doctest: +SKIP
    [(0, 0.57)]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from memreranker_core._optional import require
from memreranker_core.errors import ConfigurationError, InvalidInputError

logger = logging.getLogger(__name__)

#: Names accepted by ``--first-stage``.
FIRST_STAGES = ("bm25",)


class FirstStageIndex(Protocol):
    """A searchable corpus."""

    def rank(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best ``(corpus position, score)`` pairs, best first."""


class FirstStage(Protocol):
    """Builds an index over one corpus (one conversation's turns)."""

    name: str

    def index(self, texts: Sequence[str]) -> FirstStageIndex:
        """Index ``texts``; positions in the ranking refer to this sequence."""

    def describe(self) -> dict[str, Any]:
        """Settings for the results file."""


@dataclass(frozen=True)
class BM25FirstStage:
    """Okapi BM25 with ``bm25s``: lowercase, words of 2+ characters, English stop words removed, no stemming.

    Ranking is deterministic: candidates are sorted by score, ties by their position in the corpus (the
    conversation's turn order), so a question whose words match no turn still gets the first ``k`` turns.

    Attributes:
        k1: Term-frequency saturation.
        b: Length normalization.
        method: ``bm25s`` variant (``"lucene"`` is Lucene's/Elasticsearch's BM25).

    Example:
        >>> index = BM25FirstStage().index(["Caroline went to a support group.", "It rained."])  # doctest: +SKIP
        >>> [position for position, _ in index.rank("support group", k=2)]  # doctest: +SKIP
        [0, 1]
    """

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    name: str = "bm25"

    def index(self, texts: Sequence[str]) -> BM25Index:
        """Index the texts (each a document, in corpus order)."""
        bm25s = require("bm25s", extra="eval", purpose="The BM25 first stage")
        _quiet_bm25s_logger()
        if not texts:
            raise InvalidInputError("the first stage needs at least one document to index")
        tokens = bm25s.tokenize(list(texts), stopwords="en", show_progress=False)
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        retriever.index(tokens, show_progress=False)
        return BM25Index(retriever=retriever, size=len(texts))

    def describe(self) -> dict[str, Any]:
        """Settings for the results file."""
        return {
            "name": self.name,
            "library": "bm25s",
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "tokenizer": "lowercase, \\w\\w+ words, English stop words, no stemming",
        }


@dataclass(frozen=True)
class BM25Index:
    """A ``bm25s`` index over one corpus; see ``BM25FirstStage``."""

    retriever: Any
    size: int

    def rank(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``min(k, corpus size)`` best ``(position, BM25 score)`` pairs, best first, ties by position."""
        bm25s = require("bm25s", extra="eval", purpose="The BM25 first stage")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be a whole number >= 1, not {k!r}")
        query_tokens = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)[0]
        scores = self.retriever.get_scores(query_tokens) if query_tokens else [0.0] * self.size
        order = sorted(range(self.size), key=lambda position: (-float(scores[position]), position))
        return [(position, float(scores[position])) for position in order[:k]]


def _quiet_bm25s_logger() -> None:
    """bm25s sets its logger to DEBUG on import, which bypasses the application's level; let it inherit instead."""
    bm25s_logger = logging.getLogger("bm25s")
    if bm25s_logger.level == logging.DEBUG:
        bm25s_logger.setLevel(logging.NOTSET)


def create_first_stage(name: str) -> FirstStage:
    """The first stage called ``name``.

    Raises:
        ConfigurationError: ``name`` is not one of ``FIRST_STAGES``.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key == "bm25":
        return BM25FirstStage()
    raise ConfigurationError(
        f"unknown first stage {name!r}; available: {', '.join(FIRST_STAGES)}. "
        "(Only BM25 ships for now: rerank your own system's candidates with the Python API instead.)"
    )
