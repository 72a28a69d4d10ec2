"""The card's columns: ranx values on hand-built runs against hand-computed numbers, a cross-check of every
ranking column against pytrec_eval, and the thresholded-set F1."""

from __future__ import annotations

import math
import random

import pytest

from memreranker_core.errors import InvalidInputError
from memreranker_core.eval.metrics import (
    RANKING_COLUMNS,
    f1_of_sets,
    mean,
    percentile,
    ranking_metrics,
    threshold_f1,
)

pytest.importorskip("ranx")

LOG2_3 = math.log2(3)


def test_two_hand_built_questions_match_hand_computed_values():
    qrels = {"q1": {"a", "c"}, "q2": {"z", "w"}}  # w is never retrieved: it still counts in the denominators
    rankings = {"q1": ["a", "b", "c", "d"], "q2": ["x", "y", "z"]}
    values = ranking_metrics(qrels, rankings)
    ideal = 1 + 1 / LOG2_3  # two relevant documents at ranks 1 and 2
    q1 = values["q1"]
    assert q1["MAP"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert q1["MRR"] == pytest.approx(1.0)
    assert q1["NDCG@1"] == pytest.approx(1.0)
    assert q1["NDCG@3"] == pytest.approx((1 + 1 / 2) / ideal)  # hits at ranks 1 and 3: 1/log2(2) + 1/log2(4)
    assert q1["NDCG@10"] == pytest.approx((1 + 1 / 2) / ideal)
    assert q1["NDCG"] == pytest.approx((1 + 1 / 2) / ideal)
    assert (q1["R@3"], q1["R@5"], q1["R@20"]) == pytest.approx((1.0, 1.0, 1.0))
    q2 = values["q2"]
    assert q2["MAP"] == pytest.approx((1 / 3) / 2)
    assert q2["MRR"] == pytest.approx(1 / 3)
    assert q2["NDCG@1"] == pytest.approx(0.0)
    assert q2["NDCG@3"] == pytest.approx((1 / 2) / ideal)
    assert q2["NDCG"] == pytest.approx((1 / 2) / ideal)
    assert (q2["R@3"], q2["R@5"], q2["R@20"]) == pytest.approx((0.5, 0.5, 0.5))


def test_recall_cutoffs_count_only_the_first_k_positions():
    ranking = [f"d{i}" for i in range(30)]
    values = ranking_metrics({"q": {"d2", "d4", "d19", "d25"}}, {"q": ranking})["q"]
    assert values["R@3"] == pytest.approx(1 / 4)
    assert values["R@5"] == pytest.approx(2 / 4)
    assert values["R@20"] == pytest.approx(3 / 4)


def test_order_is_the_list_order_not_any_library_tie_rule():
    forward = ranking_metrics({"q": {"b"}}, {"q": ["a", "b", "c"]})["q"]
    backward = ranking_metrics({"q": {"b"}}, {"q": ["c", "a", "b"]})["q"]
    assert forward["MRR"] == pytest.approx(1 / 2)
    assert backward["MRR"] == pytest.approx(1 / 3)


def test_extra_columns_are_computed_by_ranx_too():
    values = ranking_metrics({"q": {"d40"}}, {"q": [f"d{i}" for i in range(50)]}, extra={"R@50": "recall@50"})
    assert values["q"]["R@50"] == pytest.approx(1.0)
    assert values["q"]["R@20"] == pytest.approx(0.0)


def test_every_ranking_column_agrees_with_pytrec_eval_on_random_runs():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    qrels, rankings = {}, {}
    for number in range(40):
        docs = [f"t{i}" for i in range(rng.randint(5, 60))]
        rng.shuffle(docs)
        pool = docs + [f"missing{i}" for i in range(3)]  # some evidence the first stage never retrieved
        qrels[f"q{number}"] = set(rng.sample(pool, rng.randint(1, 6)))
        rankings[f"q{number}"] = docs
    ours = ranking_metrics(qrels, rankings)
    trec_names = {
        "MAP": "map",
        "MRR": "recip_rank",
        "NDCG@1": "ndcg_cut_1",
        "NDCG@3": "ndcg_cut_3",
        "NDCG@10": "ndcg_cut_10",
        "NDCG": "ndcg",
        "R@3": "recall_3",
        "R@5": "recall_5",
        "R@20": "recall_20",
    }
    assert set(trec_names) == set(RANKING_COLUMNS)
    evaluator = pytrec_eval.RelevanceEvaluator(
        {qid: {doc: 1 for doc in relevant} for qid, relevant in qrels.items()},
        {"map", "recip_rank", "ndcg", "ndcg_cut.1,3,10", "recall.3,5,20"},
    )
    trec_run = {qid: {doc: float(len(docs) - rank) for rank, doc in enumerate(docs)} for qid, docs in rankings.items()}
    theirs = evaluator.evaluate(trec_run)
    for qid in qrels:
        for column, trec in trec_names.items():
            assert ours[qid][column] == pytest.approx(theirs[qid][trec], abs=1e-9), (qid, column)


@pytest.mark.parametrize(
    ("qrels", "rankings", "message"),
    [
        ({"q": {"a"}}, {"q": ["a", "b", "a"]}, "repeats a document"),
        ({"q": {"a"}}, {"other": ["a"]}, "same questions"),
        ({"q": set()}, {"q": ["a"]}, "no relevant document"),
        ({"q": {"a"}}, {"q": []}, "empty ranking"),
        ({}, {}, "no questions"),
    ],
)
def test_bad_runs_raise_a_typed_error(qrels, rankings, message):
    with pytest.raises(InvalidInputError, match=message):
        ranking_metrics(qrels, rankings)


def test_f1_of_the_thresholded_set_by_hand():
    scores = {"e1": 0.9, "x1": 0.8, "e2": 0.3, "x2": 0.1}
    # selected {e1, x1}: P = 1/2, R = 1/2 -> F1 = 1/2
    assert threshold_f1(scores, {"e1", "e2"}, 0.5) == pytest.approx(0.5)
    # selected {e1}: P = 1, R = 1/2 -> F1 = 2/3
    assert threshold_f1(scores, {"e1", "e2"}, 0.85) == pytest.approx(2 / 3)
    # selected all four: P = 2/4, R = 2/3 (e3 was never retrieved) -> F1 = 2 * (1/2 * 2/3) / (1/2 + 2/3) = 4/7
    assert threshold_f1(scores, {"e1", "e2", "e3"}, 0.0) == pytest.approx(4 / 7)


def test_f1_threshold_is_inclusive_and_an_empty_selection_scores_zero():
    assert threshold_f1({"e": 0.5}, {"e"}, 0.5) == pytest.approx(1.0)
    assert threshold_f1({"e": 0.4999}, {"e"}, 0.5) == 0.0
    assert f1_of_sets(set(), {"e"}) == 0.0
    assert f1_of_sets({"x"}, {"e"}) == 0.0
    with pytest.raises(InvalidInputError):
        threshold_f1({"e": 0.9}, set(), 0.5)


def test_percentile_matches_numpy_linear_interpolation():
    numpy = pytest.importorskip("numpy")
    rng = random.Random(3)
    for size in (1, 2, 7, 100):
        values = [rng.random() for _ in range(size)]
        for q in (50, 95, 99):
            assert percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)))
    assert math.isnan(percentile([], 95))
    assert mean([1.0, 2.0, 6.0]) == pytest.approx(3.0)
    assert math.isnan(mean([]))
