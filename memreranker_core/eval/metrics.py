"""The model card's ten LoCoMo columns: nine ranking metrics through ``ranx``, and the thresholded-set F1.

Ranking metrics (binary relevance: a question's evidence turns are relevant, every other turn is not):

======== ============ ===================================================================================
column   ranx name    meaning
======== ============ ===================================================================================
MAP      ``map``      average precision over the whole ranked list (divided by the number of evidence turns)
MRR      ``mrr``      1 / rank of the first evidence turn (0 when none is ranked)
NDCG@k   ``ndcg@k``   normalized DCG of the first k, linear gain, log2 discount
NDCG     ``ndcg``     NDCG of the whole ranked list
R@k      ``recall@k`` evidence turns in the first k / all evidence turns
======== ============ ===================================================================================

The denominators count every evidence turn of the question, including those the first stage did not retrieve, so
a reranker cannot score above what its candidates allow.

F1 (ours, in ``threshold_f1``): the selected set is every candidate whose calibrated score P(yes) is at least the
threshold; precision = |selected ∩ evidence| / |selected|, recall = |selected ∩ evidence| / |evidence|,
F1 = 2PR / (P + R), and F1 = 0 when nothing is selected or nothing selected is evidence. It is computed per
question and averaged over questions (macro), like the ranking columns.

Example:
    >>> threshold_f1({"D1:1": 0.9, "D1:2": 0.7, "D1:3": 0.1}, relevant={"D1:1", "D1:3"}, threshold=0.5)
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

from memreranker_core._optional import require
from memreranker_core.errors import InvalidInputError

#: The card's columns in its order; F1 comes from ``threshold_f1``, the others from ranx.
CARD_COLUMNS = ("MAP", "MRR", "NDCG@1", "NDCG@3", "NDCG@10", "NDCG", "R@3", "R@5", "R@20", "F1")
#: Card column -> ranx metric name.
RANX_METRICS: Mapping[str, str] = {
    "MAP": "map",
    "MRR": "mrr",
    "NDCG@1": "ndcg@1",
    "NDCG@3": "ndcg@3",
    "NDCG@10": "ndcg@10",
    "NDCG": "ndcg",
    "R@3": "recall@3",
    "R@5": "recall@5",
    "R@20": "recall@20",
}
RANKING_COLUMNS = tuple(RANX_METRICS)


def ranking_metrics(
    qrels: Mapping[str, Collection[str]],
    rankings: Mapping[str, Sequence[str]],
    extra: Mapping[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """Per-question values of the card's nine ranking columns, computed by ``ranx``.

    Args:
        qrels: Question id -> ids of its relevant documents (at least one each).
        rankings: Question id -> document ids, best first (no repeats). Must have the same question ids as
            ``qrels``. Positions, not scores, define the order: ranx receives strictly decreasing scores, so
            ties never reach a library's own tie-breaking.
        extra: More columns to compute, column name -> ranx metric name (e.g. ``{"R@50": "recall@50"}``).

    Returns:
        Question id -> column -> value.

    Raises:
        InvalidInputError: Question ids differ, a question has no relevant document or an empty ranking, or a
            ranking repeats a document.
    """
    ranx = require("ranx", extra="eval", purpose="The evaluation metrics")
    _check(qrels, rankings)
    columns = {**RANX_METRICS, **(extra or {})}
    qrels_dict = {qid: {doc: 1 for doc in relevant} for qid, relevant in qrels.items()}
    run_dict = {
        qid: {doc: float(len(ranking) - rank) for rank, doc in enumerate(ranking)} for qid, ranking in rankings.items()
    }
    run = ranx.Run(run_dict)
    ranx.evaluate(ranx.Qrels(qrels_dict), run, list(columns.values()), save_results_in_run=True)
    return {qid: {column: float(run.scores[metric][qid]) for column, metric in columns.items()} for qid in qrels_dict}


def _check(qrels: Mapping[str, Collection[str]], rankings: Mapping[str, Sequence[str]]) -> None:
    if set(qrels) != set(rankings):
        missing = sorted(set(qrels) - set(rankings))[:5]
        stray = sorted(set(rankings) - set(qrels))[:5]
        raise InvalidInputError(
            f"qrels and rankings must cover the same questions (missing: {missing}, extra: {stray})"
        )
    if not qrels:
        raise InvalidInputError("no questions to evaluate")
    for qid, relevant in qrels.items():
        if not relevant:
            raise InvalidInputError(f"question {qid!r} has no relevant document; skip it before evaluating")
        ranking = rankings[qid]
        if not ranking:
            raise InvalidInputError(f"question {qid!r} has an empty ranking")
        if len(set(ranking)) != len(ranking):
            raise InvalidInputError(f"the ranking of question {qid!r} repeats a document")


def f1_of_sets(selected: Collection[str], relevant: Collection[str]) -> float:
    """F1 of a selected set against the relevant set; 0 when either is empty or they do not meet.

    Examples:
        >>> f1_of_sets({"a", "b"}, {"a"})
        0.6666666666666666
        >>> f1_of_sets(set(), {"a"})
        0.0
    """
    selected, relevant = set(selected), set(relevant)
    hits = len(selected & relevant)
    if hits == 0:
        return 0.0
    precision, recall = hits / len(selected), hits / len(relevant)
    return 2 * precision * recall / (precision + recall)


def threshold_f1(scores: Mapping[str, float], relevant: Collection[str], threshold: float) -> float:
    """F1 of the candidates whose calibrated score is at least ``threshold`` (see the module docstring).

    Args:
        scores: Candidate id -> P(yes) in [0, 1].
        relevant: Ids of every evidence document of the question (retrieved or not).
        threshold: The selection threshold, in [0, 1].
    """
    if not relevant:
        raise InvalidInputError("threshold_f1 needs at least one relevant document")
    return f1_of_sets({doc for doc, score in scores.items() if score >= threshold}, relevant)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; NaN for no values."""
    return math.fsum(values) / len(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation between order statistics (numpy's default); NaN if empty.

    Examples:
        >>> percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95)
        4.8
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
