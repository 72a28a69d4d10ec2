"""ranx's paired tests on hand-made runs whose answer is known, and their marks in the table and results.json."""

from __future__ import annotations

import math

import pytest

from memreranker_core.errors import InvalidInputError
from memreranker_core.eval.metrics import ranking_metrics
from memreranker_core.eval.report import SIGNIFICANT_MARK, markdown_table, results_dict
from memreranker_core.eval.runner import OVERALL, EvalConfig, EvalRun, QuestionOutcome, summarize
from memreranker_core.eval.significance import compare_columns, paired_test

ranx = pytest.importorskip("ranx")

CONTROL = [0.1, 0.2, 0.3, 0.4, 0.5]
TREATMENT = [0.2, 0.4, 0.4, 0.6, 0.6]  # differences 0.1, 0.2, 0.1, 0.2, 0.1


def student_p_df4(t: float) -> float:
    """Two-sided p of Student's t with 4 degrees of freedom, from the distribution's closed form."""
    u = t * t / 4
    cdf = 0.5 + 0.375 * (t / math.sqrt(1 + u)) * (1 - u / (3 * (1 + u)))
    return 2 * (1 - cdf)


def test_paired_t_test_gives_the_p_value_worked_out_by_hand():
    # mean difference 0.14, sample sd sqrt(0.003), n = 5: t = 0.14 / (sqrt(0.003) / sqrt(5)) = 5.7155
    t = 0.14 / (math.sqrt(0.003) / math.sqrt(5))
    expected = student_p_df4(t)
    assert expected == pytest.approx(0.004636, abs=1e-6)
    result = paired_test(CONTROL, TREATMENT, "student", max_p=0.05)
    assert result.p_value == pytest.approx(expected, rel=1e-9)
    assert result.significant and result.questions == 5
    assert not paired_test(CONTROL, TREATMENT, "student", max_p=0.001).significant  # 0.0046 > 0.001


def test_identical_runs_are_never_significant_and_get_p_1():
    for test in ("student", "fisher"):
        result = paired_test(CONTROL, CONTROL, test)
        assert (result.p_value, result.significant) == (1.0, False)


def test_fisher_randomization_separates_a_large_consistent_gain_from_noise():
    better = paired_test([0.0] * 30, [1.0] * 30, "fisher")
    assert better.p_value == 0.0 and better.significant  # no sign flip reaches a mean difference of 1
    noise = paired_test([0.0, 1.0] * 15, [1.0, 0.0] * 15, "fisher")  # same mean, opposite per question
    assert noise.p_value > 0.5 and not noise.significant


def test_compare_columns_on_rankings_agrees_with_ranx_compare():
    qrels = {f"q{i}": ["rel"] for i in range(6)}
    first = {qid: ["x", "y", "rel"] for qid in qrels}  # evidence third everywhere
    second = {qid: ["rel", "x", "y"] for qid in list(qrels)[:5]} | {"q5": ["x", "rel", "y"]}
    values_a = ranking_metrics(qrels, first)
    values_b = ranking_metrics(qrels, second)
    ours = compare_columns(values_a, values_b, list(qrels), ["MAP", "MRR", "NDCG@1"], "student", max_p=0.05)

    def run(rankings, name):
        return ranx.Run({q: {d: float(3 - r) for r, d in enumerate(docs)} for q, docs in rankings.items()}, name=name)

    report = ranx.compare(
        ranx.Qrels({q: {"rel": 1} for q in qrels}),
        [run(first, "a"), run(second, "b")],
        ["map", "mrr", "ndcg@1"],
        stat_test="student",
        max_p=0.05,
    )
    theirs = report.comparisons["a", "b"]
    for column, metric in (("MAP", "map"), ("MRR", "mrr"), ("NDCG@1", "ndcg@1")):
        assert ours[column].p_value == pytest.approx(theirs[metric]["p_value"], rel=1e-9), column
        assert ours[column].significant == theirs[metric]["significant"]
    assert ours["MAP"].significant  # 5 of 6 questions move the evidence from rank 3 to rank 1


def test_bad_test_settings_are_refused():
    with pytest.raises(InvalidInputError, match="available: student, fisher"):
        paired_test(CONTROL, TREATMENT, "wilcoxon")
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        paired_test(CONTROL, TREATMENT, max_p=1.5)
    with pytest.raises(InvalidInputError, match="must match"):
        paired_test(CONTROL, TREATMENT[:3])
    with pytest.raises(InvalidInputError, match="unknown statistical test"):
        EvalConfig(stat_test="wilcoxon")


def hand_made_run(n: int, improve: int) -> EvalRun:
    """n category-4 questions; the reranker moves the evidence from last to first on the first ``improve``."""
    outcomes = []
    for i in range(n):
        candidates = ("D1:1", "D1:2", "D1:3")
        better = i < improve
        outcomes.append(
            QuestionOutcome(
                qid=f"c/q{i}",
                category=4,
                question=f"question {i}",
                relevant=("D1:3",),
                candidates=candidates,
                first_stage_scores=(3.0, 2.0, 1.0),
                reranked=("D1:3", "D1:1", "D1:2") if better else candidates,
                rerank_scores=(0.2, 0.1, 0.9) if better else (0.9, 0.8, 0.7),
                latency_s=0.01,
                evidence_ranks=(3,),
            )
        )
    return EvalRun(config=EvalConfig(candidates=3), outcomes=tuple(outcomes), skipped_no_evidence=())


def test_reranked_vs_first_stage_is_marked_in_the_table_and_results_json():
    run = hand_made_run(8, improve=8)
    summary = summarize(run)
    group = summary.groups[OVERALL]
    assert group.significance["MAP"].significant  # the same gain on every question: p = 0
    assert group.significance["R@3"].p_value == 1.0  # K = 3: recall at 3 cannot change
    assert "F1" not in group.significance  # the first stage has no F1 to pair with
    row = next(line for line in markdown_table(run, summary).splitlines() if line.startswith("| overall | 8 | +"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[3] == f"1.000{SIGNIFICANT_MARK}"  # MAP
    assert cells[9] == "1.000"  # R@3, unchanged, unmarked
    saved = results_dict(run, summary)["groups"][OVERALL]["significance"]
    assert saved["MAP"]["significant"] is True and saved["MAP"]["test"] == "student"
    assert saved["R@3"] == {"p_value": 1.0, "significant": False, "test": "student", "questions": 8}


def test_a_gain_on_too_few_questions_is_not_marked():
    run = hand_made_run(8, improve=1)
    summary = summarize(run)
    result = summary.groups[OVERALL].significance["MAP"]
    # one nonzero difference among n makes t = 1 exactly: p = P(|T_7| > 1) = 0.3506
    assert result.p_value == pytest.approx(0.3506, abs=1e-3) and not result.significant
    row = next(line for line in markdown_table(run, summary).splitlines() if line.startswith("| overall | 8 | +"))
    assert SIGNIFICANT_MARK not in row
