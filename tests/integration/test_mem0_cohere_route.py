"""The no-code route: mem0's own ``cohere`` reranker provider, pointed with ``CO_API_URL`` at a vLLM-style
``/v1/rerank`` endpoint (the loopback server standing in for ``vllm serve`` of MemReranker).

Each check runs in a fresh interpreter because the Cohere SDK reads ``CO_API_URL`` once, when it is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("mem0")
pytest.importorskip("cohere")

from tests.support.memories import MEMORIES, QUERY, SECRET
from tests.support.rerank_server import RerankServer, overlap_score

CHILD = """
import json, sys
from mem0.utils.factory import RerankerFactory
reranker = RerankerFactory.create("cohere", {"model": "MemReranker-0.6B", "api_key": sys.argv[1]})
documents = json.loads(sys.argv[2])
print(json.dumps(reranker.rerank(sys.argv[3], documents, top_k=int(sys.argv[4]))))
"""


def run_cohere_provider(server: RerankServer, api_key: str, documents: list[dict], top_k: int, tmp_path) -> list:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMOS_", "CO_", "COHERE_"))}
    env.update(CO_API_URL=server.base_url, MEM0_TELEMETRY="False", MEM0_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", CHILD, api_key, json.dumps(documents), QUERY, str(top_k)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def server():
    with RerankServer(api_style="vllm", api_key=SECRET) as running:
        yield running


def test_mem0_cohere_provider_reranks_through_a_vllm_style_endpoint(server, tmp_path):
    documents = [{"id": doc_id, "memory": text, "metadata": dict(meta)} for doc_id, text, meta in MEMORIES]
    result = run_cohere_provider(server, SECRET, documents, 3, tmp_path)

    received = server.received[-1]
    assert received.path == "/v1/rerank"  # Cohere's v1 client; vLLM serves the same path
    assert {k.lower(): v for k, v in received.headers.items()}["authorization"] == f"Bearer {SECRET}"
    sent = server.requests[-1]
    assert sent["documents"] == [text for _, text, _ in MEMORIES]  # quirk: the bare text, no date or speaker
    assert sent["top_n"] == 3
    scores = overlap_score(QUERY, sent["documents"])
    order = sorted(range(len(documents)), key=lambda i: -scores[i])[:3]
    assert [(r["id"], r["rerank_score"]) for r in result] == [
        (documents[i]["id"], pytest.approx(scores[i], abs=1e-9)) for i in order
    ]


def test_mem0_cohere_provider_turns_a_failure_into_silent_zero_scores(server, tmp_path):
    documents = [{"id": doc_id, "memory": text} for doc_id, text, _ in MEMORIES]
    result = run_cohere_provider(server, "sk-wrong-key", documents, 3, tmp_path)
    # The quirk MemRerankerMem0 avoids: a refused key gives every memory 0.0 in the original order, no error.
    assert [(r["id"], r["rerank_score"]) for r in result] == [(doc_id, 0.0) for doc_id, _, _ in MEMORIES[:3]]
