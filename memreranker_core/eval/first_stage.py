"""First-stage retrieval: rank each question's conversation turns, from which its candidates are taken.

Three first stages, by ``create_first_stage(name)``:

- ``bm25``: Okapi BM25 with ``bm25s`` (``BM25FirstStage``);
- ``dense``: cosine similarity of sentence-transformers embeddings, cached on disk (``DenseFirstStage``);
- ``hybrid``: reciprocal rank fusion (k = 60) of the BM25 and dense rankings, by ``ranx.fuse`` (``HybridFirstStage``).

Every index ranks **all** of its corpus for a question (``rank_all``), best first, ties by corpus position (the
conversation's turn order), so the runner can cut any pool from one ranking.

Example:
    >>> stage = create_first_stage("bm25")  # doctest: +SKIP
    >>> index = stage.index(["Caroline: I went to a support group.", "Melanie: I painted a lake."])  # doctest: +SKIP
    >>> index.rank("Where did Caroline go?", k=1)  # doctest: +SKIP
    [(0, 0.57)]
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from memreranker_core._optional import require
from memreranker_core.errors import ConfigurationError, InvalidInputError
from memreranker_core.eval.embeddings import DEFAULT_EMBEDDING_MODEL, CachedEmbedder

logger = logging.getLogger(__name__)

#: Names accepted by ``--first-stage``.
FIRST_STAGES = ("bm25", "dense", "hybrid")
#: The k of reciprocal rank fusion (Cormack et al., 2009): a document at rank r adds 1 / (k + r).
RRF_K = 60

Ranking = list[tuple[int, float]]


class FirstStageIndex(Protocol):
    """A searchable corpus."""

    def rank(self, query: str, k: int) -> Ranking:
        """The ``k`` best ``(corpus position, score)`` pairs, best first."""

    def rank_all(self, queries: Sequence[str]) -> list[Ranking]:
        """For each query, every corpus position with its score, best first, ties by position."""


class FirstStage(Protocol):
    """Builds an index over one corpus (one conversation's turns)."""

    name: str

    def index(self, texts: Sequence[str]) -> FirstStageIndex:
        """Index ``texts``; positions in the ranking refer to this sequence."""

    def describe(self) -> dict[str, Any]:
        """Settings for the results file."""


def _check_k(k: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be a whole number >= 1, not {k!r}")


def _order(scores: Sequence[float]) -> Ranking:
    """Every position with its score, by score (highest first), ties by position."""
    order = sorted(range(len(scores)), key=lambda position: (-float(scores[position]), position))
    return [(position, float(scores[position])) for position in order]


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

    def rank(self, query: str, k: int) -> Ranking:
        """The ``min(k, corpus size)`` best ``(position, BM25 score)`` pairs, best first, ties by position."""
        _check_k(k)
        return self.rank_all([query])[0][:k]

    def rank_all(self, queries: Sequence[str]) -> list[Ranking]:
        """Every position with its BM25 score, best first, ties by position (a query of stop words only: all 0)."""
        bm25s = require("bm25s", extra="eval", purpose="The BM25 first stage")
        rankings = []
        for query in queries:
            query_tokens = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)[0]
            scores = self.retriever.get_scores(query_tokens) if query_tokens else [0.0] * self.size
            rankings.append(_order(scores))
        return rankings


def _quiet_bm25s_logger() -> None:
    """bm25s sets its logger to DEBUG on import, which bypasses the application's level; let it inherit instead."""
    bm25s_logger = logging.getLogger("bm25s")
    if bm25s_logger.level == logging.DEBUG:
        bm25s_logger.setLevel(logging.NOTSET)


@dataclass(frozen=True)
class DenseFirstStage:
    """Dense retrieval: turns and questions embedded by a sentence-transformers model, ranked by cosine similarity.

    Embeddings are L2-normalized (so the dot product is the cosine) and cached on disk per conversation, keyed by
    the model and the exact texts (see ``memreranker_core.eval.embeddings``). Ties keep the corpus order.

    Attributes:
        model: A sentence-transformers embedding model: hub id or local folder.
        cache_dir: The embedding cache folder (``None``: the default, ``~/.cache/memreranker/embeddings``).
        device: Torch device of the embedding model (``None``: a GPU when there is one).

    Example:
        >>> stage = DenseFirstStage("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> stage.index(["I adopted a puppy.", "It rained."]).rank("Which pet?", k=1)  # doctest: +SKIP
        [(0, 0.41)]
    """

    model: str = DEFAULT_EMBEDDING_MODEL
    cache_dir: str | None = None
    device: str | None = None
    name: str = "dense"
    embedder: CachedEmbedder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "embedder", CachedEmbedder(self.model, self.cache_dir, self.device))

    def index(self, texts: Sequence[str]) -> DenseIndex:
        """Embed the texts (or load them from the cache)."""
        if not texts:
            raise InvalidInputError("the first stage needs at least one document to index")
        return DenseIndex(embedder=self.embedder, vectors=self.embedder.embed(list(texts)))

    def describe(self) -> dict[str, Any]:
        """Settings for the results file."""
        return {
            "name": self.name,
            "library": "sentence-transformers",
            "embedding_model": self.model,
            "similarity": "cosine (L2-normalized embeddings)",
            "cache_dir": str(self.embedder.folder),
        }


@dataclass(frozen=True)
class DenseIndex:
    """Embedded turns; see ``DenseFirstStage``."""

    embedder: CachedEmbedder
    vectors: Any

    def rank(self, query: str, k: int) -> Ranking:
        """The ``k`` most similar ``(position, cosine)`` pairs, best first, ties by position."""
        _check_k(k)
        return self.rank_all([query])[0][:k]

    def rank_all(self, queries: Sequence[str]) -> list[Ranking]:
        """Every position with its cosine similarity, for each query (embedded in one batch, cached)."""
        if not queries:
            return []
        similarities = self.embedder.embed(list(queries)) @ self.vectors.T
        return [_order(row.tolist()) for row in similarities]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Sequence[int]]], k: int = RRF_K) -> list[Ranking]:
    """Fuse several rankings of the same corpus, query by query, by reciprocal rank fusion through ``ranx.fuse``.

    A document at (1-based) rank r of a ranking adds 1 / (k + r) to its fused score; the result is ordered by fused
    score, ties by position (smallest first).

    Args:
        rankings: One entry per system; each holds, per query, the corpus positions best first (the same queries,
            in the same order, for every system).
        k: RRF's constant (60 in Cormack et al. and in most systems).

    Returns:
        Per query, every position any system ranked, with its fused score, best first.

    Example:
        >>> reciprocal_rank_fusion([[[0, 1, 2]], [[2, 1, 0]]], k=60)  # doctest: +SKIP
        [[(1, 0.0322...), (0, 0.0320...), (2, 0.0320...)]]
    """
    ranx = require("ranx", extra="eval", purpose="Reciprocal rank fusion")
    if len(rankings) < 2:
        raise InvalidInputError("reciprocal rank fusion needs at least two rankings")
    sizes = {len(system) for system in rankings}
    if len(sizes) != 1:
        raise InvalidInputError(f"every system must rank the same queries; got {sorted(sizes)} queries")
    queries = sizes.pop()
    if queries == 0:
        return []
    runs = []
    for system in rankings:
        # strictly decreasing scores in list order: ranx's ranks are exactly the list positions
        runs.append(
            ranx.Run(
                {
                    f"q{query}": {str(position): float(len(order) - rank) for rank, position in enumerate(order)}
                    for query, order in enumerate(system)
                }
            )
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unsafe cast.*")  # numba, inside ranx's rrf kernel
        fused = ranx.fuse(runs, norm=None, method="rrf", params={"k": k}).to_dict()
    results = []
    for query in range(queries):
        scores = fused.get(f"q{query}", {})
        # round before comparing, so that sums equal up to float rounding count as ties (then by position)
        ordered = sorted(
            ((int(doc), float(score)) for doc, score in scores.items()), key=lambda x: (-round(x[1], 12), x[0])
        )
        results.append(ordered)
    return results


@dataclass(frozen=True)
class HybridFirstStage:
    """Reciprocal rank fusion (``RRF_K`` = 60) of the BM25 and dense rankings of every turn.

    Attributes:
        model: The dense side's embedding model.
        cache_dir: The dense side's embedding cache.
        device: The dense side's torch device.
        k: RRF's constant.

    Example:
        >>> stage = HybridFirstStage("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> stage.index(["I adopted a puppy.", "It rained."]).rank("Which puppy?", k=2)  # doctest: +SKIP
    """

    model: str = DEFAULT_EMBEDDING_MODEL
    cache_dir: str | None = None
    device: str | None = None
    k: int = RRF_K
    name: str = "hybrid"
    dense: DenseFirstStage = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_k(self.k)
        object.__setattr__(self, "dense", DenseFirstStage(self.model, self.cache_dir, self.device))

    def index(self, texts: Sequence[str]) -> HybridIndex:
        """Index the texts with both first stages."""
        return HybridIndex(sparse=BM25FirstStage().index(texts), dense=self.dense.index(texts), k=self.k)

    def describe(self) -> dict[str, Any]:
        """Settings for the results file."""
        return {
            "name": self.name,
            "fusion": f"reciprocal rank fusion, k={self.k} (ranx.fuse method='rrf'), ties by turn order",
            "bm25": BM25FirstStage().describe(),
            "dense": self.dense.describe(),
        }


@dataclass(frozen=True)
class HybridIndex:
    """A BM25 index and a dense index over the same corpus, fused by RRF; see ``HybridFirstStage``."""

    sparse: BM25Index
    dense: DenseIndex
    k: int = RRF_K

    def rank(self, query: str, k: int) -> Ranking:
        """The ``k`` best ``(position, RRF score)`` pairs, best first, ties by position."""
        _check_k(k)
        return self.rank_all([query])[0][:k]

    def rank_all(self, queries: Sequence[str]) -> list[Ranking]:
        """Every position with its fused score, for each query."""
        systems = [
            [[position for position, _ in ranking] for ranking in index.rank_all(queries)]
            for index in (self.sparse, self.dense)
        ]
        return reciprocal_rank_fusion(systems, k=self.k)


def create_first_stage(
    name: str,
    *,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    cache_dir: str | None = None,
    device: str | None = None,
) -> FirstStage:
    """The first stage called ``name`` (nothing is loaded until it indexes).

    Args:
        name: One of ``FIRST_STAGES``.
        embedding_model: The embedding model of ``dense`` and ``hybrid``.
        cache_dir: Their embedding cache folder.
        device: Their embedding model's torch device.

    Raises:
        ConfigurationError: ``name`` is not one of ``FIRST_STAGES``.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key == "bm25":
        return BM25FirstStage()
    if key == "dense":
        return DenseFirstStage(embedding_model, cache_dir, device)
    if key == "hybrid":
        return HybridFirstStage(embedding_model, cache_dir, device)
    raise ConfigurationError(
        f"unknown first stage {name!r}; available: {', '.join(FIRST_STAGES)}. "
        "(To rerank your own system's candidates, use the Python API instead.)"
    )
