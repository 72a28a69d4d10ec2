"""``memreranker eval compare``: two saved runs paired on their questions, deltas, significance, chart, errors."""

from __future__ import annotations

import io
import json
import math

import pytest

from memreranker_core.cli import main
from memreranker_core.errors import InvalidInputError
from memreranker_core.eval.compare import compare_runs, load_saved_run
from memreranker_core.eval.locomo import load_locomo
from memreranker_core.eval.report import write_report
from memreranker_core.eval.runner import DEFAULT_TEMPLATE, OVERALL, EvalConfig, run_locomo, summarize
from memreranker_core.eval.significance import paired_test
from memreranker_core.types import RerankResult

pytest.importorskip("bm25s")
pytest.importorskip("ranx")
pytest.importorskip("matplotlib")

TURNS = [
    ("D1:1", "Alice", "I adopted a puppy named Biscuit."),
    ("D1:2", "Bob", "I started learning the violin."),
    ("D1:3", "Alice", "Biscuit chewed my shoes again."),
    ("D1:4", "Bob", "My recital went well yesterday."),
    ("D1:5", "Alice", "I moved to Denver for a new job."),
]
QUESTIONS = [
    ("What is the puppy called?", "D1:1", 4),
    ("What instrument does Bob learn?", "D1:2", 4),
    ("What did Biscuit chew?", "D1:3", 4),
    ("How did the recital go?", "D1:4", 2),
    ("Where did Alice move?", "D1:5", 4),
    ("What is Biscuit?", "D1:1", 1),
    ("Did Bob move to Denver?", "D1:5", 5),
]
SAMPLE = [
    {
        "sample_id": "conv-a",
        "conversation": {
            "speaker_a": "Alice",
            "speaker_b": "Bob",
            "session_1_date_time": "1 May 2023",
            "session_1": [{"speaker": s, "dia_id": i, "text": t} for i, s, t in TURNS],
        },
        "qa": [{"question": q, "evidence": [e], "category": c} for q, e, c in QUESTIONS],
    }
]
EVIDENCE_TEXT = {q: next(t for i, _, t in TURNS if i == e) for q, e, _ in QUESTIONS}


class KnownAnswers:
    """Scores each candidate by whether it is the question's evidence: ``good`` ranks it first, else last."""

    document_template = DEFAULT_TEMPLATE

    def __init__(self, good: bool) -> None:
        self.good = good

    def rerank(self, query, documents):
        hit = [EVIDENCE_TEXT[query] == doc["text"] for doc in documents]
        scores = [
            (0.9 if h else 0.2 - 0.01 * i) if self.good else (0.05 if h else 0.8 - 0.01 * i) for i, h in enumerate(hit)
        ]
        order = sorted(range(len(documents)), key=lambda i: -scores[i])
        return [
            RerankResult(
                index=i, score=scores[i], document=documents[i]["text"], logit=math.log(scores[i] / (1 - scores[i]))
            )
            for i in order
        ]


def saved(tmp_path, name, good, **config):
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(SAMPLE), encoding="utf-8")
    run = run_locomo(load_locomo(path), KnownAnswers(good), EvalConfig(candidates=5, **config), progress=False)
    write_report(run, summarize(run), tmp_path / name)
    return tmp_path / name / "results.json"


def run_cli(*argv):
    out = io.StringIO()
    return main(list(argv), stdout=out, stdin=io.StringIO()), out.getvalue()


def test_compare_prints_both_runs_their_deltas_and_marks_the_significant_ones(tmp_path):
    bad, good = saved(tmp_path, "bad", good=False), saved(tmp_path, "good", good=True)
    code, table = run_cli("eval", "compare", str(bad), str(good), "--out", str(tmp_path / "cmp"))
    assert code == 0
    results_a = json.loads(bad.read_text())["groups"][OVERALL]["reranked"]
    results_b = json.loads(good.read_text())["groups"][OVERALL]["reranked"]
    rows = {line.split("|")[3].strip(): line for line in table.splitlines() if line.startswith("| overall |")}
    cells = {run: [c.strip() for c in line.strip("|").split("|")] for run, line in rows.items()}
    assert cells["A"][3] == f"{results_a['MAP']:.3f}" and cells["B"][3] == f"{results_b['MAP']:.3f}"
    # evidence last among 5 (MAP 0.2) vs first (MAP 1) on all 6 questions: the same gain everywhere, p = 0
    assert cells["B − A"][3] == "+0.800†"
    assert cells["B − A"][11] == "+0.000"  # R@20 with 5 candidates: cannot change, never marked
    saved_json = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert saved_json["questions"] == {"common": 7, "only_a": 0, "only_b": 0}
    assert saved_json["groups"][OVERALL]["significance"]["MAP"]["significant"] is True
    assert (tmp_path / "cmp" / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "A = bad: " in table and "B = good: " in table


def test_the_p_values_are_those_of_the_saved_per_question_values(tmp_path):
    a = load_saved_run(saved(tmp_path, "a", good=False))
    b = load_saved_run(saved(tmp_path, "b", good=True, threshold=0.1))
    comparison = compare_runs(a, b)
    group = comparison.groups["category 4 (single-hop)"]
    qids = [qid for qid, row in a.rows.items() if row["category"] == 4]
    for column in ("MRR", "NDCG@3", "F1"):
        expected = paired_test(
            [a.rows[q]["metrics"]["reranked"][column] for q in qids],
            [b.rows[q]["metrics"]["reranked"][column] for q in qids],
        )
        assert group.significance[column] == expected
    assert set(comparison.groups) == {
        OVERALL,
        "category 1 (multi-hop)",
        "category 2 (temporal)",
        "category 4 (single-hop)",
        "category 5 (adversarial)",
    }
    assert comparison.groups[OVERALL].questions == 6  # category 5 apart


def test_runs_over_different_questions_are_paired_on_the_common_ones(tmp_path):
    a = load_saved_run(saved(tmp_path, "a", good=False))
    b = load_saved_run(saved(tmp_path, "b", good=True, limit=4))
    comparison = compare_runs(a, b)
    assert (comparison.common, comparison.only_a, comparison.only_b) == (4, 3, 0)
    first_stage_only = tmp_path / "fs"
    assert run_cli("eval", "locomo", "--data", str(tmp_path / "locomo.json"), "--first-stage-only", "--out",
                   str(first_stage_only))[0] == 0  # fmt: skip
    assert load_saved_run(first_stage_only).system == "first_stage"
    assert "F1" not in compare_runs(a, load_saved_run(first_stage_only)).groups[OVERALL].delta


def test_files_without_per_question_metrics_or_common_questions_are_refused(tmp_path, capsys):
    a = saved(tmp_path, "a", good=False)
    rows = (a.parent / "per_question.jsonl").read_text().splitlines()
    old = [json.dumps({k: v for k, v in json.loads(line).items() if k != "metrics"}) for line in rows]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text(a.read_text())
    (tmp_path / "old" / "per_question.jsonl").write_text("\n".join(old) + "\n")
    with pytest.raises(InvalidInputError, match="re-run `memreranker eval locomo`"):
        load_saved_run(tmp_path / "old")
    other = [json.dumps({**json.loads(line), "qid": "x/" + json.loads(line)["qid"]}) for line in rows]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.json").write_text(a.read_text())
    (tmp_path / "other" / "per_question.jsonl").write_text("\n".join(other) + "\n")
    with pytest.raises(InvalidInputError, match="share no question"):
        compare_runs(load_saved_run(a), load_saved_run(tmp_path / "other"))
    code, _ = run_cli("eval", "compare", str(tmp_path / "missing.json"), str(a))
    assert code == 2 and "results.json written by `memreranker eval locomo`" in capsys.readouterr().err
