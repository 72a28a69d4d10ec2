"""Hostile or careless files given to the command line end in the prefixed one-line error with exit status 2, never
a traceback: JSONL integers of thousands of digits, LoCoMo JSON nested 100k deep or holding such an integer, a
malformed ``per_question.jsonl``, and a ``per_question_file`` pointing outside the run's folder."""

from __future__ import annotations

import io
import json

import pytest

from memreranker_core.cli import main

HUGE = "7" * 5000  # over Python's default int_max_str_digits (4300)


def run_cli(*argv: str) -> int:
    return main(list(argv), stdout=io.StringIO(), stdin=io.StringIO())


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("memreranker: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    "line",
    [f'{{"text": "a", "n": {HUGE}}}', HUGE, f'{{"text": "a", "n": [{HUGE}]}}', f'{{"text": "a", "n": -{HUGE}}}'],
    ids=["metadata", "bare", "nested", "negative"],
)
def test_a_jsonl_integer_of_thousands_of_digits_exits_2_naming_the_line(tmp_path, capsys, line):
    docs = tmp_path / "docs.jsonl"
    docs.write_text(f'"fine"\n{line}\n', encoding="utf-8")
    assert run_cli("rerank", "-q", "q", "--docs-file", str(docs)) == 2
    assert "docs.jsonl:2" in one_line_error(capsys)


@pytest.mark.parametrize(
    "content",
    ["[" * 100_000 + "]" * 100_000, f'[{{"sample_id": {HUGE}}}]', '[{"sample_id": "a", "x": ' + "[" * 100_000],
    ids=["nested-100k", "huge-integer", "nested-unterminated"],
)
def test_a_hostile_locomo_file_exits_2(tmp_path, capsys, content):
    data = tmp_path / "locomo.json"
    data.write_text(content, encoding="utf-8")
    assert run_cli("eval", "locomo", "--data", str(data), "--first-stage-only", "--out", str(tmp_path / "o")) == 2
    assert "locomo.json" in one_line_error(capsys)


def test_a_locomo_value_nested_just_under_the_parsers_limit_exits_2(tmp_path, capsys):
    deep = "[" * 900 + "]" * 900
    data = tmp_path / "locomo.json"
    data.write_text(
        '[{"sample_id": "a", "conversation": {"speaker_a": ' + deep + ', "speaker_b": "B"}, "qa": []}]',
        encoding="utf-8",
    )
    code = run_cli("eval", "locomo", "--data", str(data), "--first-stage-only", "--out", str(tmp_path / "o"))
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err  # read as text, or refused with the one-line error


GOOD_ROW = {"qid": "conv-a/0", "category": 4, "metrics": {"first_stage": {"MAP": 0.5}, "candidate_recall": {}}}


def run_folder(tmp_path, name: str, lines: list[str], per_question_file: object = "per_question.jsonl"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"groups": {}, "per_question_file": per_question_file}), "utf-8")
    (folder / "per_question.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "results.json"


@pytest.mark.parametrize(
    "lines, said",
    [
        (["{not json"], "per_question.jsonl:1 is not valid JSON"),
        ([json.dumps(GOOD_ROW), "[1, 2, 3]"], "per_question.jsonl:2 must be a JSON object"),
        (['"a string"'], "must be a JSON object"),
        ([json.dumps({**GOOD_ROW, "qid": None})], "has no question id ('qid')"),
        ([json.dumps({k: v for k, v in GOOD_ROW.items() if k != "qid"})], "no question id"),
        ([json.dumps({**GOOD_ROW, "category": "x"})], "category"),
        ([json.dumps({**GOOD_ROW, "metrics": [1]})], "no per-question metrics"),
        ([json.dumps({**GOOD_ROW, "metrics": {"first_stage": [0.5]}})], "must map metric names to numbers"),
        ([json.dumps({**GOOD_ROW, "metrics": {"first_stage": {"MAP": "high"}}})], "must map metric names to numbers"),
        ([json.dumps(GOOD_ROW).replace("0.5", "1" + "0" * 400)], "must map metric names to numbers"),
        ([json.dumps(GOOD_ROW).replace("0.5", HUGE)], "not valid JSON"),
        (["[" * 100_000 + "]" * 100_000], "nested too deeply"),
        ([json.dumps(GOOD_ROW), json.dumps(GOOD_ROW)], "repeats question id"),
        (
            [json.dumps({**GOOD_ROW, "qid": "b", "metrics": {"reranked": {"MAP": 1}}}), json.dumps(GOOD_ROW)],
            "no 'first_stage'",
        ),
    ],
    ids=[
        "bad-line",
        "a-list",
        "a-string",
        "null-qid",
        "no-qid",
        "bad-category",
        "metrics-list",
        "values-list",
        "value-text",
        "value-overflows",
        "value-huge-int",
        "nested",
        "repeated-qid",
        "mixed-systems",
    ],
)
def test_compare_on_a_malformed_per_question_file_exits_2(tmp_path, capsys, lines, said):
    bad = run_folder(tmp_path, "bad", lines)
    good = run_folder(tmp_path, "good", [json.dumps(GOOD_ROW)])
    assert run_cli("eval", "compare", str(bad), str(good), "--out", str(tmp_path / "cmp")) == 2
    assert said in one_line_error(capsys)


@pytest.mark.parametrize(
    "name",
    ["../outside.jsonl", "../../outside.jsonl", "ABSOLUTE", "sub/../../outside.jsonl", "", 7, None, ["x"]],
    ids=["parent", "grandparent", "absolute", "dotdot-inside", "empty", "int", "null", "list"],
)
def test_compare_never_reads_a_per_question_file_outside_the_run_folder(tmp_path, capsys, name):
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(GOOD_ROW) + "\n", encoding="utf-8")
    (tmp_path / "runs").mkdir()
    if name == "ABSOLUTE":
        name = str(outside)
    bad = run_folder(tmp_path / "runs", "bad", [json.dumps(GOOD_ROW)], per_question_file=name)
    good = run_folder(tmp_path / "runs", "good", [json.dumps(GOOD_ROW)])
    assert run_cli("eval", "compare", str(bad), str(good), "--out", str(tmp_path / "cmp")) == 2
    assert "per_question_file" in one_line_error(capsys)


def test_compare_follows_a_symlink_only_when_it_stays_inside_the_run_folder(tmp_path, capsys):
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(GOOD_ROW) + "\n", encoding="utf-8")
    bad = run_folder(tmp_path, "bad", [json.dumps(GOOD_ROW)], per_question_file="link.jsonl")
    (bad.parent / "link.jsonl").symlink_to(outside)
    good = run_folder(tmp_path, "good", [json.dumps(GOOD_ROW)])
    assert run_cli("eval", "compare", str(bad), str(good), "--out", str(tmp_path / "cmp")) == 2
    assert "outside the run's folder" in one_line_error(capsys)
