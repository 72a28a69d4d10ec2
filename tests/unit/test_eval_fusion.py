"""Reciprocal rank fusion (ranx.fuse, k = 60) on hand-made rankings: scores and order worked out by hand."""

from __future__ import annotations

import pytest

from memreranker_core.errors import ConfigurationError, InvalidInputError
from memreranker_core.eval.first_stage import create_first_stage, reciprocal_rank_fusion

pytest.importorskip("ranx")


def test_rrf_scores_and_order_match_the_hand_computation():
    bm25 = [[0, 1, 2, 3]]
    dense = [[2, 0, 3, 1]]
    fused = reciprocal_rank_fusion([bm25, dense], k=60)[0]
    # 0: 1/61 + 1/62, 2: 1/63 + 1/61, 1: 1/62 + 1/64, 3: 1/64 + 1/63
    assert [position for position, _ in fused] == [0, 2, 1, 3]
    expected = {0: 1 / 61 + 1 / 62, 1: 1 / 62 + 1 / 64, 2: 1 / 63 + 1 / 61, 3: 1 / 64 + 1 / 63}
    for position, score in fused:
        assert score == pytest.approx(expected[position], rel=1e-12)


def test_rrf_ties_go_to_the_earlier_turn_whatever_the_systems_order():
    assert [p for p, _ in reciprocal_rank_fusion([[[0, 1]], [[1, 0]]])[0]] == [0, 1]
    assert [p for p, _ in reciprocal_rank_fusion([[[1, 0]], [[0, 1]]])[0]] == [0, 1]


def test_rrf_k_changes_the_order_as_the_formula_says():
    # turn 0 is first for BM25 and last (10th) for dense; turn 2 is third for both
    sparse = [list(range(10))]
    dense = [[1, 3, 2, 4, 5, 6, 7, 8, 9, 0]]
    k1 = dict(reciprocal_rank_fusion([sparse, dense], k=1)[0])
    assert k1[0] == pytest.approx(1 / 2 + 1 / 11) and k1[2] == pytest.approx(1 / 4 + 1 / 4)  # 0.591 > 0.5
    k60 = reciprocal_rank_fusion([sparse, dense], k=60)[0]
    order = [position for position, _ in k60]
    assert dict(k60)[0] == pytest.approx(1 / 61 + 1 / 70) and dict(k60)[2] == pytest.approx(2 / 63)  # 0.0307 < 0.0317
    assert order.index(2) < order.index(0)
    assert [p for p, _ in reciprocal_rank_fusion([sparse, dense], k=1)[0]].index(0) < order.index(0)


def test_rrf_handles_several_queries_at_once_and_refuses_a_lone_ranking():
    fused = reciprocal_rank_fusion([[[0, 1], [1, 0]], [[0, 1], [1, 0]]])
    assert [[p for p, _ in query] for query in fused] == [[0, 1], [1, 0]]
    with pytest.raises(InvalidInputError, match="at least two"):
        reciprocal_rank_fusion([[[0, 1]]])
    with pytest.raises(InvalidInputError, match="same queries"):
        reciprocal_rank_fusion([[[0, 1]], [[0, 1], [1, 0]]])


def test_first_stage_names_and_their_settings():
    assert create_first_stage("hybrid").describe()["fusion"].startswith("reciprocal rank fusion, k=60")
    assert create_first_stage("dense", embedding_model="some/model").describe()["embedding_model"] == "some/model"
    with pytest.raises(ConfigurationError, match="available: bm25, dense, hybrid"):
        create_first_stage("splade")
    with pytest.raises(ConfigurationError, match="embedding model"):
        create_first_stage("dense", embedding_model=" ")
