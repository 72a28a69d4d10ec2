"""``memreranker eval locomo`` without a model (``--first-stage-only``): files written, table printed, errors."""

from __future__ import annotations

import io
import json
import math

import pytest

from memreranker_core.cli import main
from memreranker_core.eval.metrics import CARD_COLUMNS

pytest.importorskip("bm25s")
pytest.importorskip("ranx")
pytest.importorskip("matplotlib")

SAMPLE = [
    {
        "sample_id": "conv-a",
        "conversation": {
            "speaker_a": "Alice",
            "speaker_b": "Bob",
            "session_1_date_time": "1 May 2023",
            "session_1": [
                {"speaker": "Alice", "dia_id": "D1:1", "text": "I adopted a puppy named Biscuit."},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "I started learning the violin."},
                {"speaker": "Bob", "dia_id": "D1:3", "text": "My violin recital went well."},
            ],
        },
        "qa": [
            {"question": "What is the puppy's name?", "evidence": ["D1:1"], "category": 4},
            {"question": "How did the violin recital go?", "evidence": ["D1:3; D1:2"], "category": 1},
            {"question": "Is Alice kind?", "evidence": [], "category": 3},
            {"question": "Did Bob adopt a puppy?", "evidence": ["D1:1"], "category": 5},
        ],
    }
]


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(SAMPLE), encoding="utf-8")
    return path


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out, stdin=io.StringIO()), out.getvalue()


def test_first_stage_only_writes_json_markdown_chart_and_per_question_rows(data_file, tmp_path):
    out = tmp_path / "out"
    code, printed = run_cli("eval", "locomo", "--data", str(data_file), "--first-stage-only", "--out", str(out))
    assert code == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"), parse_constant=pytest.fail)
    assert results["reranker"] is None
    assert results["config"]["candidates"] == 50 and results["config"]["first_stage"] == "bm25"
    assert results["data"]["evaluated"] == 3
    assert results["data"]["skipped_no_evidence"] == 1
    assert results["data"]["skipped_question_ids"] == ["conv-a/q2"]
    assert [repair["raw"] for repair in results["data"]["evidence_repairs"]] == ["D1:3; D1:2"]
    assert set(results["groups"]) == {
        "overall",
        "category 1 (multi-hop)",
        "category 4 (single-hop)",
        "category 5 (adversarial)",
    }
    overall = results["groups"]["overall"]
    assert overall["questions"] == 2
    assert overall["reranked"] is None
    assert set(overall["first_stage"]) == set(CARD_COLUMNS) - {"F1"}
    assert all(0.0 <= value <= 1.0 for value in overall["first_stage"].values())
    assert "P(yes) >= threshold" in results["metric_definitions"]["F1"]
    rows = [json.loads(line) for line in (out / "per_question.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["qid"] for row in rows] == ["conv-a/q0", "conv-a/q1", "conv-a/q3"]
    assert rows[1]["relevant"] == ["D1:3", "D1:2"]
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "results.md").read_text(encoding="utf-8")
    assert markdown in printed
    assert markdown.splitlines()[0] == "Pool: **first-stage** (BM25 top 50)"
    header = next(line for line in markdown.splitlines() if line.startswith("| group |"))
    assert all(f" {column} " in header for column in CARD_COLUMNS)
    assert "| overall | 2 | BM25 top-50 |" in markdown
    assert "results.json" in printed


def test_first_stage_only_table_values_are_the_summary_values(data_file, tmp_path):
    out = tmp_path / "out"
    run_cli("eval", "locomo", "--data", str(data_file), "--first-stage-only", "--out", str(out), "--candidates", "2")
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    overall = results["groups"]["overall"]
    row = next(line for line in (out / "results.md").read_text().splitlines() if line.startswith("| overall |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == "BM25 top-2"
    for column, cell in zip(CARD_COLUMNS, cells[3:13], strict=True):
        value = overall["first_stage"].get(column)
        assert cell == ("—" if value is None else f"{value:.3f}")
    assert not math.isnan(overall["candidate_recall"])


def test_an_unknown_first_stage_exits_2_naming_the_choices(data_file, tmp_path, capsys):
    code, _ = run_cli(
        "eval",
        "locomo",
        "--data",
        str(data_file),
        "--first-stage",
        "splade",
        "--first-stage-only",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 2
    assert "unknown first stage 'splade'; available: bm25, dense, hybrid" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_missing_data_file_exits_2_with_the_download_hint(tmp_path, capsys):
    code, _ = run_cli("eval", "locomo", "--data", str(tmp_path / "nope.json"), "--first-stage-only")
    assert code == 2
    assert "snap-research/locomo" in capsys.readouterr().err


@pytest.mark.parametrize("option", [("--candidates", "0"), ("--threshold", "1.5"), ("--limit", "-3")])
def test_out_of_range_numbers_are_usage_errors(data_file, option, capsys):
    with pytest.raises(SystemExit) as raised:
        run_cli("eval", "locomo", "--data", str(data_file), "--first-stage-only", *option)
    assert raised.value.code == 2
    assert option[0] in capsys.readouterr().err


def test_eval_needs_a_benchmark_name(capsys):
    with pytest.raises(SystemExit):
        run_cli("eval")
    assert "locomo" in capsys.readouterr().err
