"""The no-code route: MemOS's own ``http_bge`` reranker, configured through ``RerankerFactory.from_config``, pointed at
a vLLM-style ``/v1/rerank`` endpoint (the loopback server standing in for ``vllm serve`` of MemReranker), with the
quirks pinned: a leading ``[...]`` is stripped from every memory, ``token`` is never sent (auth goes through
``headers_extra``), ``memory_time`` is not sent, and a failure becomes 0.0 for every memory.

Skipped without MemOS (MemoryOS), which cannot share this project's test environment (see docs/frameworks.md)."""

from __future__ import annotations

import json
import os
import tempfile
import uuid

import pytest

os.environ.setdefault("MEMOS_BASE_PATH", tempfile.mkdtemp(prefix="memos-test-"))  # its log folder, not the repo
pytest.importorskip("memos.reranker.http_bge")

from memos.configs.reranker import RerankerConfigFactory
from memos.memories.textual.item import TextualMemoryItem, TreeNodeTextualMemoryMetadata
from memos.reranker.factory import RerankerFactory
from memos.reranker.http_bge import HTTPBGEReranker

from tests.support.memories import SECRET
from tests.support.rerank_server import RerankServer, overlap_score

QUERY = "When did Caroline go to the LGBTQ support group?"
TEXTS = [
    "[7 May 2023] Caroline went to the LGBTQ support group.",
    "Melanie painted a sunrise over the lake.",
    "It rained all weekend, so we stayed in.",
]


def make_items() -> list[TextualMemoryItem]:
    return [
        TextualMemoryItem(
            id=str(uuid.UUID(int=position + 1)),
            memory=text,
            metadata=TreeNodeTextualMemoryMetadata(memory_time="2023-05-07", user_id="caroline"),
        )
        for position, text in enumerate(TEXTS)
    ]


@pytest.fixture
def server():
    with RerankServer(api_style="vllm", api_key=SECRET) as running:
        yield running


def test_http_bge_from_config_reranks_through_a_vllm_style_endpoint(server):
    config = {
        "url": f"{server.base_url}/v1/rerank",
        "model": "MemReranker-0.6B",
        "headers_extra": json.dumps({"Authorization": f"Bearer {SECRET}"}),  # the only way to send a key
    }
    reranker = RerankerFactory.from_config(RerankerConfigFactory(backend="http_bge", config=config))
    found = reranker.rerank(QUERY, make_items(), top_k=2)

    sent = server.requests[-1]
    assert server.received[-1].path == "/v1/rerank" and sent["model"] == "MemReranker-0.6B"
    stripped = ["Caroline went to the LGBTQ support group.", *TEXTS[1:]]
    assert sent["documents"] == stripped  # quirk: the leading "[7 May 2023] " is gone, and memory_time is not sent
    scores = overlap_score(QUERY, stripped)
    order = sorted(range(len(TEXTS)), key=lambda i: -scores[i])[:2]
    assert [(item.memory, score) for item, score in found] == [(TEXTS[i], pytest.approx(scores[i])) for i in order]


def test_http_bge_token_is_never_sent_so_the_call_fails_into_zero_scores(server):
    reranker = HTTPBGEReranker(reranker_url=f"{server.base_url}/v1/rerank", token=SECRET, model="MemReranker-0.6B")
    found = reranker.rerank(QUERY, make_items(), top_k=2)
    headers = {name.lower() for name in server.received[-1].headers}
    assert "authorization" not in headers  # quirk: token is stored, never put in a header
    # and the refused call is swallowed: the first top_k memories, each scored 0.0, no error
    assert [(item.memory, score) for item, score in found] == [(TEXTS[0], 0.0), (TEXTS[1], 0.0)]
