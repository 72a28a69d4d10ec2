"""The ``memreranker rerank`` command: table, JSON, files, stdin and typed errors, on the tiny model."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from memreranker_core import MemReranker
from memreranker_core.cli import build_parser, main, read_documents
from memreranker_core.errors import InvalidInputError

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
    options = reranker_from_args(args).backend.options
    assert (options.base_url, options.read_timeout, options.max_retries, options.max_concurrency) == (
        "http://10.1.2.3:8000",
        7.5,
        1,
        2,
    )
    assert options.allow_insecure_http is True


# ----------------------------------------------------------------- reading documents (no model needed)
def binary_stdin(data: bytes) -> io.TextIOWrapper:
    """A stdin as the real one is: text over a binary buffer."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\f", "\x85", "\v", "\x1c", "\x1d", "\x1e"])
def test_files_and_stdin_split_on_newline_only_so_unicode_separators_stay_inside_a_document(tmp_path, separator):
    memory = f"Caroline went to the group.{separator}She liked it."
    text_file = tmp_path / "memories.txt"
    text_file.write_text(f"{memory}\nIt rained.\n", encoding="utf-8")
    assert read_documents(str(text_file), io.StringIO()) == [memory, "It rained."]
    jsonl = tmp_path / "memories.jsonl"
    jsonl.write_text(json.dumps({"text": memory}, ensure_ascii=False) + "\n" + json.dumps(memory) + "\n")
    assert read_documents(str(jsonl), io.StringIO()) == [{"text": memory}, memory]
    piped = (json.dumps(memory, ensure_ascii=False) + "\n").encode()
    assert read_documents("-", binary_stdin(piped)) == [memory]


def test_crlf_line_ends_and_blank_lines_are_dropped(tmp_path):
    path = tmp_path / "memories.txt"
    path.write_bytes(b"one\r\n\r\n  \ntwo\r\n")
    assert read_documents(str(path), io.StringIO()) == ["one", "two"]


def test_a_byte_order_mark_is_dropped_from_files_and_stdin(tmp_path):
    path = tmp_path / "memories.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"text": "one"}\n"two"\n')
    assert read_documents(str(path), io.StringIO()) == [{"text": "one"}, "two"]
    assert read_documents("-", binary_stdin(b'\xef\xbb\xbf{"text": "one"}\n')) == [{"text": "one"}]
    assert read_documents("-", io.StringIO('\ufeff"one"\n')) == ["one"]  # an already-decoded stream
    text = tmp_path / "memories.txt"
    text.write_bytes(b"\xef\xbb\xbfone\n")
    assert read_documents(str(text), io.StringIO()) == ["one"]


def test_the_jsonl_suffix_is_matched_in_any_case(tmp_path):
    path = tmp_path / "MEMORIES.JSONL"
    path.write_text('{"text": "one", "date": "d"}\n')
    assert read_documents(str(path), io.StringIO()) == [{"text": "one", "date": "d"}]


def test_format_makes_the_reading_explicit_for_files_and_stdin(tmp_path):
    braces = '{"text": "one"}\n"two"\n'
    assert read_documents("-", io.StringIO(braces)) == [{"text": "one"}, "two"]  # auto: sniffed as JSONL
    assert read_documents("-", io.StringIO(braces), "text") == ['{"text": "one"}', '"two"']
    assert read_documents("-", io.StringIO("plain\n"), "auto") == ["plain"]
    with pytest.raises(InvalidInputError, match=r"<stdin>:1 is not valid JSON .*--format text"):
        read_documents("-", io.StringIO("plain\n"), "jsonl")
    path = tmp_path / "notes.txt"
    path.write_text('"quoted"\n')
    assert read_documents(str(path), io.StringIO()) == ['"quoted"']
    assert read_documents(str(path), io.StringIO(), "jsonl") == ["quoted"]


def test_format_is_a_documented_choice_of_the_command(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["rerank", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--format {auto,jsonl,text}" in help_text and "*.jsonl" in help_text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["rerank", "-q", "q", "--format", "csv"])


def test_non_utf8_files_and_stdin_are_a_message_naming_the_line_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "latin1.txt"
    path.write_bytes("fine\nZo\xeb\n".encode("latin-1"))
    code, _ = run_cli("rerank", "-q", QUERY, "--docs-file", str(path), "--model", "/nonexistent")
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("memreranker: error: InvalidInputError: ")
    assert "latin1.txt:2 is not UTF-8" in err and "Traceback" not in err
    code = main(
        ["rerank", "-q", QUERY, "--docs-file", "-", "--model", "/x"],
        stdout=io.StringIO(),
        stdin=binary_stdin(b"\xff\xfe b\n"),
    )
    assert code == 2 and "<stdin>:1 is not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_empty_input_exits_2_with_the_error_prefix(tmp_path, capsys, content):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    code, _ = run_cli("rerank", "-q", QUERY, "--docs-file", str(path), "--model", "/nonexistent")
    assert code == 2 and "memreranker: error: InvalidInputError: no documents" in capsys.readouterr().err
    code = main(
        ["rerank", "-q", QUERY, "--docs-file", "-", "--model", "/x"], stdout=io.StringIO(), stdin=binary_stdin(content)
    )
    assert code == 2 and "memreranker: error: InvalidInputError: no documents" in capsys.readouterr().err


def test_a_missing_file_exits_2_with_the_error_prefix(tmp_path, capsys):
    code, _ = run_cli("rerank", "-q", QUERY, "--docs-file", str(tmp_path / "absent.txt"), "--model", "/x")
    assert code == 2 and capsys.readouterr().err.startswith("memreranker: error: ")


# ----------------------------------------------------------------- --template with documents lacking metadata
def test_template_with_only_text_fields_fills_plain_text_lines_and_json_strings(tiny_model_path, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('"Caroline went to a support group."\n{"text": "It rained.", "date": "8 May"}\n')
    template = "Memory: {text}"
    args = ["rerank", "-q", QUERY, "--model", str(tiny_model_path), "--device", "cpu", "--json"]
    code, output = run_cli(*args, "--docs-file", str(path), "--template", template)
    assert code == 0
    reranker = MemReranker(model=str(tiny_model_path), device="cpu")
    expected = reranker.score(QUERY, ["Memory: Caroline went to a support group.", "Memory: It rained."])
    assert {r["index"]: r["score"] for r in json.loads(output)} == pytest.approx(dict(enumerate(expected)), abs=1e-6)
    text = tmp_path / "plain.txt"
    text.write_text("Caroline went to a support group.\nIt rained.\n")
    code, output = run_cli(*args, "--docs-file", str(text), "--template", template)
    assert code == 0
    assert {r["index"]: r["score"] for r in json.loads(output)} == pytest.approx(dict(enumerate(expected)), abs=1e-6)


def test_a_template_field_a_document_lacks_is_a_typed_error_naming_its_line(tmp_path, capsys):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": "one", "date": "8 May"}\n"a JSON string"\n')
    code, _ = run_cli(
        "rerank", "-q", QUERY, "--docs-file", str(path), "--template", "[{date}] {text}", "--model", "/nonexistent"
    )  # refused before any model is needed
    err = capsys.readouterr().err
    assert code == 2 and "InvalidInputError: " in err and "mixed.jsonl:2: --template" in err
    assert "['date']" in err and "has only {text}" in err
    code, _ = run_cli("rerank", "-q", QUERY, "-d", "x", "--template", "[{speaker}] {text}", "--model", "/x")
    assert code == 2 and "--doc 1: --template" in capsys.readouterr().err


def test_a_template_with_a_format_spec_exits_2_as_a_configuration_error(capsys):
    code, _ = run_cli("rerank", "-q", QUERY, "-d", "x", "--template", "{text:{date.__class__}}", "--model", "/x")
    assert code == 2 and "ConfigurationError: " in capsys.readouterr().err
