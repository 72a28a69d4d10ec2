"""The oracle pool: every evidence turn is always a candidate, the rest are the first stage's best, in its order."""

from __future__ import annotations

import json
import random

import pytest

from memreranker_core.errors import InvalidInputError
from memreranker_core.eval.locomo import load_locomo
from memreranker_core.eval.report import markdown_table, results_dict
from memreranker_core.eval.runner import (
    OVERALL,
    EvalConfig,
    EvalRun,
    QuestionOutcome,
    pool_positions,
    run_locomo,
    summarize,
)

pytest.importorskip("bm25s")
pytest.importorskip("ranx")


def test_oracle_pool_holds_every_evidence_position_and_keeps_first_stage_order():
    rng = random.Random(7)
    for _ in range(500):
        size = rng.randint(1, 40)
        order = rng.sample(range(size), size)
        evidence = rng.sample(range(size), rng.randint(1, min(size, 6)))
        k = rng.randint(1, 45)
        pool = pool_positions(order, evidence, k, "oracle")
        assert set(evidence) <= set(pool)
        assert len(pool) == max(min(k, size), len(evidence))
        assert pool == [position for position in order if position in set(pool)]  # first-stage order
        others = [position for position in order if position not in evidence]
        assert set(pool) - set(evidence) == set(others[: len(pool) - len(evidence)])  # the best non-evidence


def test_first_stage_pool_is_the_top_k():
    assert pool_positions([5, 1, 4, 0], [0], 2, "first-stage") == [5, 1]
    with pytest.raises(InvalidInputError, match="available: first-stage, oracle"):
        pool_positions([0], [0], 1, "gold")
    with pytest.raises(InvalidInputError, match="unknown pool"):
        EvalConfig(pool="gold")


def test_oracle_pool_on_real_locomo_questions_contains_all_evidence_even_with_tiny_k(locomo_path, tmp_path):
    raw = json.loads(locomo_path.read_text(encoding="utf-8"))[:2]
    path = tmp_path / "two.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    data = load_locomo(path)
    oracle = run_locomo(data, None, EvalConfig(candidates=2, pool="oracle"), progress=False)
    plain = run_locomo(data, None, EvalConfig(candidates=2), progress=False)
    assert len(oracle.outcomes) == len(plain.outcomes) > 300
    many = 0
    for with_oracle, without in zip(oracle.outcomes, plain.outcomes, strict=True):
        assert set(with_oracle.relevant) <= set(with_oracle.candidates)
        assert len(with_oracle.candidates) == max(2, len(with_oracle.relevant))
        assert with_oracle.evidence_ranks == without.evidence_ranks  # the same first stage underneath
        many += len(with_oracle.relevant) > 2
    assert many > 0  # questions with more evidence turns than K keep them all
    summary = summarize(oracle)
    assert summary.groups[OVERALL].candidate_recall == pytest.approx(1.0)
    # the first stage's own recall at K is reported beside it, and is the plain pool's ceiling
    assert summary.groups[OVERALL].first_stage_recall["R@2"] == pytest.approx(
        summarize(plain).groups[OVERALL].candidate_recall
    )
    table = markdown_table(oracle, summary)
    assert table.startswith("Pool: **oracle**") and "measure the reranker alone" in table
    assert results_dict(oracle, summary)["pool"]["name"] == "oracle"


def test_first_stage_recall_is_averaged_over_questions_and_pooled_over_turns():
    def outcome(qid, relevant, ranks):
        return QuestionOutcome(
            qid=qid,
            category=4,
            question=qid,
            relevant=relevant,
            candidates=("D1:1", "D1:2", "D1:3"),
            first_stage_scores=(3.0, 2.0, 1.0),
            evidence_ranks=ranks,
        )

    run = EvalRun(
        config=EvalConfig(candidates=3),
        outcomes=(outcome("c/q0", ("D1:1", "D9:9"), (1, 50)), outcome("c/q1", ("D1:3",), (3,))),
        skipped_no_evidence=(),
    )
    group = summarize(run).groups[OVERALL]
    assert group.first_stage_recall == {"R@3": 0.75, "R@20": 0.75, "R@50": 1.0, "R@100": 1.0}  # (1/2 + 1) / 2
    assert group.first_stage_turn_recall["R@20"] == pytest.approx(2 / 3)  # 2 of the 3 evidence turns
    assert group.first_stage_turn_recall["R@50"] == 1.0
    assert "| overall | 2 | 0.750 | 0.750 | 1.000 | 1.000 | 0.667 | 0.667 | 1.000 | 1.000 |" in markdown_table(
        run, summarize(run)
    )
