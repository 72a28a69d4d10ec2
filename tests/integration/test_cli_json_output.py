"""``memreranker rerank --json`` prints standard JSON even for scores of exactly 1 or 0, whose log-odds are infinite
(``null``, never ``Infinity``), against the real loopback server."""

from __future__ import annotations

import io
import json

from memreranker_core.cli import main
from tests.support.rerank_server import RerankServer

KEY = "sk-test-SECRET-4242"


def strict_json(text: str):
    def refuse(constant: str):
        raise ValueError(f"not standard JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_rerank_json_output_is_standard_json_for_scores_of_exactly_one_and_zero():
    with RerankServer(scorer=lambda query, documents: [1.0, 0.0, 0.25][: len(documents)], api_key=KEY) as server:
        out = io.StringIO()
        backend = ["--backend", "hosted", "--base-url", server.base_url, "--api-key", KEY]
        documents = ["-d", "sure", "-d", "never", "-d", "maybe"]
        code = main(["rerank", *backend, "-q", "q", *documents, "--json"], stdout=out, stdin=io.StringIO())
    assert code == 0
    rows = strict_json(out.getvalue())
    assert [(row["document"], row["score"], row["logit"]) for row in rows] == [
        ("sure", 1.0, None),
        ("maybe", 0.25, rows[1]["logit"]),
        ("never", 0.0, None),
    ]
    assert isinstance(rows[1]["logit"], float) and rows[1]["logit"] < 0
