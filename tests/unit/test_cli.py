"""The ``memreranker rerank`` command: table, JSON, files, stdin and typed errors, on the tiny model."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from memreranker_core import MemReranker
from memreranker_core.cli import main

pytest.importorskip("torch")
QUERY = "Where did Caroline go?"
DOCS = ["Caroline went to a support group.", "Melanie painted a lake.", "The weather was cold."]


def run_cli(*argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdout=out, stdin=io.StringIO(stdin))
    return code, out.getvalue()


def test_json_output_has_every_document_ranked_with_the_core_scores(tiny_model_path, tiny_reranker):
    args = ["rerank", "-q", QUERY, "--model", str(tiny_model_path), "--device", "cpu", "--json"]
    code, output = run_cli(*args, *[item for doc in DOCS for item in ("--doc", doc)])
    assert code == 0
    rows = json.loads(output)
    expected = tiny_reranker.score(QUERY, DOCS)
    assert sorted(row["index"] for row in rows) == [0, 1, 2]
    assert [row["rank"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert row["document"] == DOCS[row["index"]]
        assert row["score"] == pytest.approx(expected[row["index"]], abs=1e-6)


def test_table_output_with_top_n_and_threshold(tiny_model_path, tiny_reranker):
    scores = tiny_reranker.score(QUERY, DOCS)
    threshold = sorted(scores)[0] + 1e-9  # drops the lowest
    args = ["rerank", "-q", QUERY, "--model", str(tiny_model_path), "--device", "cpu", "--top-n", "5"]
    code, output = run_cli(*args, "--threshold", str(threshold), *[x for d in DOCS for x in ("-d", d)])
    assert code == 0
    lines = output.strip().splitlines()
    assert lines[0].split() == ["rank", "score", "index", "document"]
    assert len(lines) == 1 + 2 + 1 and "(2 of 3 documents" in lines[-1]


def test_documents_from_a_jsonl_file_with_a_template(tiny_model_path, tmp_path):
    path = tmp_path / "memories.jsonl"
    records = [{"text": t, "date": "7 May 2023", "speaker": "Caroline"} for t in DOCS]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    template = "[{date}] {speaker}: {text}"
    args = ["rerank", "-q", QUERY, "--model", str(tiny_model_path), "--device", "cpu", "--json"]
    code, output = run_cli(*args, "--docs-file", str(path), "--template", template)
    assert code == 0
    expected = MemReranker(model=str(tiny_model_path), device="cpu", document_template=template).score(QUERY, records)
    rows = json.loads(output)
    assert {row["index"]: row["score"] for row in rows} == pytest.approx(dict(enumerate(expected)), abs=1e-6)
    assert rows[0]["document"] in DOCS  # the text as given, not the rendered template


def test_documents_from_stdin_one_per_line(tiny_model_path):
    args = [
        "rerank",
        "-q",
        QUERY,
        "--model",
        str(tiny_model_path),
        "--device",
        "cpu",
        "--json",
        "--docs-file",
        "-",
    ]
    code, output = run_cli(*args, stdin="\n".join(DOCS) + "\n\n")
    assert code == 0 and len(json.loads(output)) == 3


def test_no_documents_exits_2_with_the_error_prefix(capsys):
    code, _ = run_cli("rerank", "-q", QUERY)
    assert code == 2
    assert "memreranker: error: InvalidInputError: no documents" in capsys.readouterr().err


def test_invalid_option_value_exits_2_with_the_typed_error(tiny_model_path, capsys):
    code, _ = run_cli("rerank", "-q", QUERY, "-d", "x", "--model", str(tiny_model_path), "--top-n", "0")
    assert code == 2
    assert "InvalidInputError: top_n must be > 0" in capsys.readouterr().err


def test_malformed_jsonl_line_is_reported_with_its_line_number(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('"fine"\n{not json}\n')
    code, _ = run_cli("rerank", "-q", QUERY, "--docs-file", str(path), "--model", "/nonexistent")
    assert code == 2 and "bad.jsonl:2 is not valid JSON" in capsys.readouterr().err


def test_the_installed_command_runs_against_the_tiny_model(tiny_model_path):
    command = [
        sys.executable,
        "-m",
        "memreranker_core.cli",
        "rerank",
        "-q",
        QUERY,
        "-d",
        DOCS[0],
        "-d",
        DOCS[1],
    ]
    env = {**os.environ, "MEMRERANKER_MODEL": str(tiny_model_path), "MEMRERANKER_BACKEND": "local"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(2 of 2 documents" in result.stdout


def test_hosted_options_reach_the_backend():
    from memreranker_core.cli import build_parser, reranker_from_args

    args = build_parser().parse_args(
        [
            "rerank",
            "-q",
            "q",
            "-d",
            "d",
            "--backend",
            "hosted",
            "--base-url",
            "http://10.1.2.3:8000",
            "--api-style",
            "vllm",
            "--allow-insecure-http",
            "--read-timeout",
            "7.5",
            "--max-retries",
            "1",
            "--max-concurrency",
            "2",
        ]
    )
    backend = reranker_from_args(args).backend
    assert (backend.base_url, backend.read_timeout, backend.max_retries, backend.max_concurrency) == (
        "http://10.1.2.3:8000",
        7.5,
        1,
        2,
    )
    assert backend.allow_insecure_http is True
