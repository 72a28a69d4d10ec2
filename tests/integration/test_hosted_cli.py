"""``memreranker rerank --backend hosted`` against a loopback service: same options, typed errors, no key shown."""

from __future__ import annotations

import io
import json

import pytest

from tests.support.rerank_server import RerankServer, overlap_score

KEY = "sk-cli-SECRET-31337"
QUERY = "Where did Caroline go?"
DOCS = ["Caroline went to a support group.", "Melanie painted a lake.", "The weather was cold."]


def run_cli(*argv: str) -> tuple[int, str]:
    cli = pytest.importorskip("memreranker_core.cli")
    out = io.StringIO()
    return cli.main(list(argv), stdout=out, stdin=io.StringIO("")), out.getvalue()


@pytest.mark.parametrize("style", ["memos", "vllm", "tei"])
def test_rerank_through_the_cli_ranks_every_document_with_the_services_scores(style):
    with RerankServer(api_style=style, api_key=KEY) as server:
        args = ["rerank", "--backend", "hosted", "--base-url", server.base_url, "--api-style", style]
        code, output = run_cli(*args, "--api-key", KEY, "-q", QUERY, "--json", *[x for d in DOCS for x in ("-d", d)])
    assert code == 0
    rows = json.loads(output)
    want = overlap_score(QUERY, DOCS)
    assert sorted(row["index"] for row in rows) == [0, 1, 2]
    for row in rows:
        assert row["document"] == DOCS[row["index"]]
        assert row["score"] == pytest.approx(want[row["index"]], rel=1e-12)


def test_a_refused_key_exits_1_with_a_typed_error_that_hides_the_key(capsys):
    with RerankServer(api_key=KEY) as server:
        args = ["rerank", "--backend", "hosted", "--base-url", server.base_url, "--api-key", "sk-wrong-4242"]
        code, output = run_cli(*args, "-q", QUERY, "-d", DOCS[0])
    err = capsys.readouterr().err
    assert code == 1
    assert "AuthenticationError" in err
    assert "sk-wrong-4242" not in err + output


def test_a_missing_key_tells_how_to_set_it(capsys, monkeypatch):
    monkeypatch.delenv("MEMOS_API_KEY", raising=False)
    with RerankServer(api_key=KEY) as server:
        code, _ = run_cli("rerank", "--backend", "hosted", "--base-url", server.base_url, "-q", QUERY, "-d", DOCS[0])
    assert code == 1
    assert "MEMOS_API_KEY" in capsys.readouterr().err
