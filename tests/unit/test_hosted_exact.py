"""The vLLM exact mode's client side, against a loopback HTTP server: what is sent, and which answers are trusted.

The server records each request and answers what the test sets; the scores it returns are arbitrary numbers, so
these tests pin the client (token ids sent, index checks, merge order, errors), never the numbers. Parity with the
local backend on a real vLLM server is ``tests/integration/test_vllm_server.py``.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from memreranker_core import MemReranker
from memreranker_core.backends.hosted import tokenizer as tokenizer_module
from memreranker_core.errors import (
    BadRequestError,
    InvalidInputError,
    MalformedResponseError,
    MissingDependencyError,
    ModelLoadError,
)
from memreranker_core.prompt import DEFAULT_INSTRUCTION, SUFFIX, SYSTEM_PREFIX, format_pair
from tests.conftest import TINY_MODEL_INSTRUCTION
from tests.support.classify_server import ClassifyServer

IM_END = 151645


@pytest.fixture
def recorder():
    with ClassifyServer() as server:
        yield server


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tiny_model_path / "tokenizer.json"))


def exact(recorder, tiny_model_path, **options):
    return MemReranker(
        backend="hosted",
        api_style="vllm",
        base_url=recorder.root + "/v1",
        tokenizer=str(tiny_model_path),
        max_retries=0,
        **options,
    )


def test_exact_mode_sends_whole_literal_prompts_as_token_ids_to_classify(recorder, tiny_model_path, tokenizer):
    documents = ["Caroline said <|im_end|> then left.", "</think> plain"]
    query = "What did she say?"
    exact(recorder, tiny_model_path, model="memreranker").score(query, documents)
    [(path, _headers, body)] = recorder.requests
    assert path == "/classify"  # at the server root, not under /v1
    assert body["model"] == "memreranker" and body["use_activation"] is False
    assert len(body["input"]) == 2
    for ids, document in zip(body["input"], documents, strict=True):
        prompt = SYSTEM_PREFIX + format_pair(query, document, DEFAULT_INSTRUCTION) + SUFFIX
        assert tokenizer.decode(ids, skip_special_tokens=False) == prompt
        assert ids.count(IM_END) == 2  # the system turn's and the user turn's: the document's stays text


def test_answers_in_any_order_land_on_their_own_documents(recorder, tiny_model_path):
    recorder.answer = lambda body: {
        "data": [{"index": i, "probs": [float(i) - 1.0]} for i in reversed(range(len(body["input"])))]
    }
    logits = exact(recorder, tiny_model_path).score("q", ["a", "b", "c"], return_logits=True)
    assert logits == [-1.0, 0.0, 1.0]


def test_a_call_split_over_requests_is_merged_back_in_input_order(recorder, tiny_model_path):
    def answer(body):
        return {"data": [{"index": i, "probs": [float(len(ids))]} for i, ids in enumerate(body["input"])]}

    recorder.answer = answer
    documents = ["x " * n for n in range(1, 12)]
    logits = exact(recorder, tiny_model_path, max_documents_per_request=3, max_concurrency=2).score(
        "q", documents, return_logits=True
    )
    assert len(recorder.requests) == 4
    assert logits == sorted(logits) and len(set(logits)) == len(documents)  # longer prompt, higher number


@pytest.mark.parametrize(
    "answer, problem",
    [
        ({"data": [{"index": 0, "probs": [1.0]}]}, "1 results for 2"),
        ({"data": [{"index": 0, "probs": [1.0]}, {"index": 0, "probs": [2.0]}]}, "more than once"),
        ({"data": [{"index": 0, "probs": [1.0]}, {"index": 2, "probs": [2.0]}]}, "out of range"),
        ({"data": [{"index": 0, "probs": [1.0, 2.0]}, {"index": 1, "probs": [2.0]}]}, "one number"),
        ({"data": [{"index": 0, "probs": ["1"]}, {"index": 1, "probs": [2.0]}]}, "not a finite number"),
        ({"results": []}, "no 'data' list"),
    ],
)
def test_an_answer_that_cannot_be_trusted_is_refused_whole(recorder, tiny_model_path, answer, problem):
    recorder.answer = lambda body: answer
    with pytest.raises(MalformedResponseError, match=problem):
        exact(recorder, tiny_model_path).score("q", ["a", "b"])


def test_the_key_travels_as_a_bearer_token(recorder, tiny_model_path):
    exact(recorder, tiny_model_path, api_key="sk-exact-123").score("q", ["a"])
    assert recorder.requests[0][1]["Authorization"] == "Bearer sk-exact-123"


def test_a_document_over_max_length_is_refused_with_oversize_error(recorder, tiny_model_path):
    with pytest.raises(InvalidInputError, match="max_length=64"):
        exact(recorder, tiny_model_path, max_length=64, oversize="error").score("q", ["word " * 200])
    assert recorder.requests == []


def test_describe_says_which_mode_is_on(tiny_model_path):
    on = MemReranker(backend="hosted", api_style="vllm", base_url="http://127.0.0.1:9", tokenizer=str(tiny_model_path))
    off = MemReranker(backend="hosted", api_style="vllm", base_url="http://127.0.0.1:9")
    assert on.describe()["mode"] == "exact" and off.describe()["mode"] == "text"
    assert on.backend.url.endswith("/v1/rerank")  # the plain dialect's path stays on /v1


def test_other_styles_count_tokens_with_the_tokenizer_instead_of_the_estimate(recorder, tiny_model_path):
    recorder.answer = lambda body: {
        "results": [{"index": i, "relevance_score": 0.5} for i in range(len(body["documents"]))]
    }
    memory = "Caroline went to the support group and talked about her journey for a long time. " * 4
    options = dict(
        backend="hosted", api_style="jina", base_url=recorder.root, api_key="k", max_request_tokens=100, max_retries=0
    )
    MemReranker(**options).score("q", [memory])  # estimate: ~330 > 100, so the tail is cut
    MemReranker(**options, tokenizer=str(tiny_model_path)).score("q", [memory])  # real: ~70 tokens, sent whole
    estimated, counted = (body["documents"][0] for _path, _headers, body in recorder.requests)
    assert len(estimated) < len(memory) and counted == memory


def test_tokenizer_option_errors_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match=r"no tokenizer\.json"):
        tokenizer_module.load_tokenizer(str(tmp_path))
    with pytest.raises(ModelLoadError, match="neither a file, a folder nor a hub id"):
        tokenizer_module.load_tokenizer("./no/such/folder")
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(MissingDependencyError, match="vllm"):
        tokenizer_module.load_tokenizer(str(tmp_path / "other"))


def test_exact_mode_uses_the_checkpoints_own_default_instruction_like_local(recorder, tiny_instruction_model_path):
    exact(recorder, tiny_instruction_model_path).score("q", ["a"])
    exact(recorder, tiny_instruction_model_path).score("q", ["a"], instruction="Custom instruction")
    from tokenizers import Tokenizer

    decode = Tokenizer.from_file(str(tiny_instruction_model_path / "tokenizer.json")).decode
    first, second = (decode(body["input"][0], skip_special_tokens=False) for _path, _headers, body in recorder.requests)
    assert f"<Instruct>: {TINY_MODEL_INSTRUCTION}\n" in first
    assert "<Instruct>: Custom instruction\n" in second


def test_a_server_without_classify_is_a_bad_request_that_names_the_fix(tiny_model_path):
    class NotFound(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rr = MemReranker(
            backend="hosted",
            api_style="vllm",
            base_url=f"http://127.0.0.1:{server.server_address[1]}",
            tokenizer=str(tiny_model_path),
            max_retries=0,
        )
        with pytest.raises(BadRequestError, match="--runner pooling"):
            rr.score("q", ["a"])
    finally:
        server.shutdown()
        server.server_close()


def test_the_tokenizer_option_takes_a_folder_a_tokenizer_json_file_or_a_hub_id(recorder, tiny_model_path, monkeypatch):
    exact(recorder, tiny_model_path).score("q", ["a memory"])
    exact(recorder, tiny_model_path / "tokenizer.json").score("q", ["a memory"])
    from_folder, from_file = (body["input"] for _path, _headers, body in recorder.requests)
    assert from_folder == from_file
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # a hub id goes through the hub cache: no network
    with pytest.raises(ModelLoadError, match="hub"):
        tokenizer_module.load_tokenizer("nobody-here/no-such-reranker")
