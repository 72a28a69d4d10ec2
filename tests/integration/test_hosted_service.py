"""``MemReranker(backend="hosted")`` against a real loopback server speaking each dialect, with injected faults."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time

import pytest

from memreranker_core import MemReranker, errors
from memreranker_core.prompt import hosted_query_text
from tests.support.memories import HOSTED_DOCS, HOSTED_QUERY
from tests.support.paths import PATHS, on_path
from tests.support.rerank_server import DIALECT_PATHS, Fault, RerankServer, overlap_score

KEY = "sk-test-SECRET-42"
QUERY, DOCS = HOSTED_QUERY, HOSTED_DOCS
STYLES = sorted(DIALECT_PATHS)


#: Which API the fault suite runs through (see ``tests.support.paths``): set for each test by ``_path``.
PATH = "sync"


@pytest.fixture(autouse=True, params=PATHS)
def _path(request, monkeypatch):
    """Every test of this module runs on the sync and the async path."""
    monkeypatch.setattr(sys.modules[__name__], "PATH", request.param)
    return request.param


def hosted(server: RerankServer, **options) -> MemReranker:
    settings = {"api_key": KEY, "backoff_factor": 0.001, "read_timeout": 2.0, **options}
    return on_path(
        MemReranker(backend="hosted", base_url=server.base_url, api_style=server.api_style, **settings), PATH
    )


def expected(query: str = QUERY, docs: list[str] = DOCS) -> list[float]:
    return overlap_score(query, docs)


def assert_scores(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)


@pytest.fixture(params=STYLES)
def server(request):
    with RerankServer(api_style=request.param, api_key=KEY) as running:
        yield running


@pytest.fixture
def memos():
    with RerankServer(api_key=KEY) as running:
        yield running


# ----------------------------------------------------------------- every dialect
def test_each_dialect_scores_every_document_in_input_order(server):
    with hosted(server) as rr:
        assert_scores(rr.score(QUERY, DOCS), expected())
    received = server.received[0]
    assert received.path in DIALECT_PATHS[server.api_style]
    scheme = "Token" if server.api_style == "memos" else "Bearer"
    assert received.headers["authorization"] == f"{scheme} {KEY}"
    assert "top_n" not in received.body


def test_each_dialect_reports_a_wrong_key_as_authentication_error_without_the_key(server):
    wrong = "sk-wrong-KEY-777"
    with hosted(server, api_key=wrong) as rr, pytest.raises(errors.AuthenticationError) as caught:
        rr.score(QUERY, DOCS)
    assert wrong not in str(caught.value)
    assert len(server.requests) == 1  # never retried


def test_rerank_applies_top_n_and_threshold_after_merging_chunks(server):
    want = expected()
    with hosted(server, max_documents_per_request=2) as rr:
        top = rr.rerank(QUERY, DOCS, top_n=3)
        kept = rr.rerank(QUERY, DOCS, score_threshold=0.3)
    best = sorted(range(len(DOCS)), key=lambda i: -want[i])
    assert [r.index for r in top] == best[:3]
    assert [r.index for r in kept] == [i for i in best if want[i] >= 0.3]
    for result in top + kept:
        assert result.document == DOCS[result.index]
        assert result.score == pytest.approx(want[result.index], rel=1e-12)
    assert len(server.requests) == 8  # 4 chunks of at most 2, twice


# ----------------------------------------------------------------- retried faults
@pytest.mark.parametrize(
    "faults",
    [
        (500, 502, 503),
        (Fault.rate_limited(retry_after="0"),),
        (408,),
        ("drop",),
        ("reset",),
        (Fault.slow(0.6),),
        (Fault.html(502),),
        (Fault.body_code(50000),),
        (Fault.body_code(40300),),
    ],
    ids=[
        "5xx-run",
        "429",
        "408",
        "drop-mid-answer",
        "reset",
        "slower-than-timeout",
        "html-502",
        "code-50000",
        "code-40300",
    ],
)
def test_transient_faults_are_retried_to_the_correct_scores(memos, faults):
    memos.inject(*faults)
    with hosted(memos, read_timeout=0.3) as rr:
        assert_scores(rr.score(QUERY, DOCS), expected())
        assert rr.backend.stats()["retries"] == len(faults)
    assert len(memos.requests) == len(faults) + 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (503, errors.ServerError),
        (429, errors.RateLimitError),
        (408, errors.ServiceTimeoutError),
        ("drop", errors.ServiceConnectionError),
        (Fault.slow(0.6), errors.ServiceTimeoutError),
    ],
)
def test_a_fault_that_outlasts_the_retries_raises_its_typed_error(memos, fault, error):
    memos.inject(*[fault] * 3)
    with hosted(memos, max_retries=2, read_timeout=0.3) as rr, pytest.raises(error) as caught:
        rr.score(QUERY, DOCS)
    assert "3 attempts" in str(caught.value)
    assert len(memos.requests) == 3


def test_retry_after_is_honoured(memos):
    memos.inject(Fault.rate_limited(retry_after="0.3"))
    started = time.monotonic()
    with hosted(memos) as rr:
        rr.score(QUERY, DOCS)
    assert time.monotonic() - started >= 0.3


def test_a_retry_after_too_long_to_wait_ends_the_call_with_the_hint(memos):
    memos.inject(Fault.rate_limited(retry_after="3600"))
    with hosted(memos) as rr, pytest.raises(errors.RateLimitError) as caught:
        rr.score(QUERY, DOCS)
    assert caught.value.retry_after == 3600.0
    assert len(memos.requests) == 1


# ----------------------------------------------------------------- never retried
@pytest.mark.parametrize(
    ("fault", "error", "said"),
    [
        (Fault.body_code(40132), errors.AuthenticationError, "code 40132"),
        (Fault.body_code(40304), errors.QuotaExceededError, "quota"),
        (Fault.body_code(40305), errors.BadRequestError, "max_request_tokens"),
        (Fault.body_code(40000, status=400), errors.BadRequestError, "HTTP 400"),
        (400, errors.BadRequestError, "HTTP 400"),
        (404, errors.BadRequestError, "base_url"),
        (422, errors.BadRequestError, "max_documents_per_request"),
        ("malformed_json", errors.MalformedResponseError, "not JSON"),
        (Fault.html(200), errors.MalformedResponseError, "Bad Gateway"),
        ("missing_index", errors.MalformedResponseError, "no score for document"),
        ("duplicate_index", errors.MalformedResponseError, "scored more than once"),
        ("out_of_range_index", errors.MalformedResponseError, "out of range for 7 documents"),
        ("score_out_of_range", errors.MalformedResponseError, "1.5"),
        ("no_results", errors.MalformedResponseError, "no 'results'"),
    ],
)
def test_refusals_and_untrustworthy_answers_raise_at_once(memos, fault, error, said):
    memos.inject(fault)
    with hosted(memos) as rr, pytest.raises(error) as caught:
        rr.score(QUERY, DOCS)
    assert said in str(caught.value)
    assert len(memos.requests) == 1


def test_body_code_40132_on_http_200_with_the_key_echoed_never_leaks_it(memos):
    with hosted(memos, api_key="sk-stolen-9999") as rr, pytest.raises(errors.AuthenticationError) as caught:
        rr.score(QUERY, DOCS)
    assert caught.value.code == 40132 and caught.value.status_code == 200
    assert "sk-stolen-9999" not in str(caught.value)
    assert "***" in str(caught.value)  # the service's echo was redacted


def test_an_unreachable_service_raises_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rr = MemReranker(backend="hosted", base_url=f"http://127.0.0.1:{port}", api_key=KEY, backoff_factor=0.001)
    with pytest.raises(errors.ServiceConnectionError, match="check base_url") as caught:
        rr.score(QUERY, DOCS)
    assert "4 attempts" in str(caught.value)


# ----------------------------------------------------------------- benign shapes
@pytest.mark.parametrize("fault", ["shuffled", "wrapped", "wrapped_list"])
def test_results_in_any_order_or_wrapped_get_the_right_scores(memos, fault):
    memos.inject(fault)
    with hosted(memos) as rr:
        assert_scores(rr.score(QUERY, DOCS), expected())


# ----------------------------------------------------------------- limits
def test_documents_split_by_count_stay_under_the_services_cap():
    with RerankServer(api_key=KEY, max_documents=3) as server, hosted(server, max_documents_per_request=3) as rr:
        docs = DOCS * 4
        assert_scores(rr.score(QUERY, docs), expected(docs=docs))
        assert sorted(len(body["documents"]) for body in server.requests) == [1] + [3] * 9  # chunks run concurrently


def test_documents_split_by_token_budget_stay_under_the_services_cap():
    docs = [f"memory {i}: " + "Caroline went to the support group again " * 5 for i in range(12)]
    with RerankServer(api_key=KEY, max_request_tokens=500) as server, hosted(server, max_request_tokens=300) as rr:
        assert_scores(rr.score(QUERY, docs), expected(docs=docs))
        assert len(server.requests) > 1
        sent = [doc for body in server.requests for doc in body["documents"]]
        assert sorted(sent) == sorted(docs)  # nothing dropped or duplicated (chunks may arrive in any order)


def test_without_splitting_the_service_refuses_and_the_error_says_what_to_lower():
    with RerankServer(api_key=KEY, max_documents=3) as server, hosted(server) as rr:
        with pytest.raises(errors.BadRequestError, match="max_documents_per_request"):
            rr.score(QUERY, DOCS)


def test_chunks_go_out_concurrently_but_bounded():
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow_scorer(query, documents):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return overlap_score(query, documents)

    docs = DOCS * 4
    with RerankServer(slow_scorer, api_key=KEY) as server:
        with hosted(server, max_documents_per_request=2, max_concurrency=3) as rr:
            assert_scores(rr.score(QUERY, docs), expected(docs=docs))
    assert len(server.requests) == 14
    assert 1 <= state["peak"] <= 3


def test_an_oversize_document_is_truncated_from_its_tail_with_one_warning(memos, caplog):
    long_doc = "Caroline went to the support group. " + "filler words here " * 400
    docs = [DOCS[0], long_doc, long_doc]
    with hosted(memos, max_request_tokens=200) as rr, caplog.at_level(logging.WARNING):
        scores = rr.score(QUERY, docs)
    assert len(scores) == 3
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and "[1, 2]" in warnings[0].getMessage()
    sent = sorted((doc for body in memos.requests for doc in body["documents"]), key=len)
    assert sent[0] == DOCS[0]
    assert sent[1] == sent[2] and long_doc.startswith(sent[1]) and len(sent[1]) < len(long_doc)


def test_an_oversize_document_is_refused_when_asked_and_nothing_is_sent(memos):
    long_doc = "word " * 2000
    with hosted(memos, max_request_tokens=200, oversize="error") as rr:
        with pytest.raises(errors.InvalidInputError, match=r"document\(s\) \[1\]"):
            rr.score(QUERY, [DOCS[0], long_doc])
    assert memos.requests == []


# ----------------------------------------------------------------- prompt, async
def test_instruction_and_context_are_folded_into_the_query_text(memos):
    context = ["Caroline: I went to a support group.", "Melanie: How was it?"]
    instruction = "Find memories that answer the user's question"
    with hosted(memos, instruction=instruction, context=context) as rr:
        rr.score(QUERY, DOCS[:2])
    body = memos.requests[0]
    assert body["query"] == hosted_query_text(QUERY, instruction, tuple(context))
    assert body["query"].startswith(f"Instruct: {instruction}\nContext:\n")
    assert body["model"] == "memos-reranker-4b"


async def test_arerank_does_not_block_the_event_loop():
    def slow_scorer(query, documents):
        time.sleep(0.3)
        return overlap_score(query, documents)

    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    with RerankServer(slow_scorer, api_key=KEY) as server, hosted(server) as rr:
        task = asyncio.create_task(ticker())
        results = await rr.arerank(QUERY, DOCS, top_n=2)
        task.cancel()
    assert len(results) == 2
    assert ticks > 0


def test_concurrent_calls_share_one_session_and_get_their_own_scores(memos):
    from concurrent.futures import ThreadPoolExecutor

    queries = [f"Where did Caroline go on day {i}?" for i in range(36)]
    with hosted(memos) as rr:
        rr.warm_up()
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda q: rr.score(q, DOCS), queries))
    for query, scores in zip(queries, results, strict=True):
        assert_scores(scores, expected(query))
    connections = {item.client_port for item in memos.received}
    assert len(connections) <= 6 < len(queries)  # pooled keep-alive connections, reused across calls and threads


def test_certain_answers_become_infinite_log_odds_and_scores_of_one_and_zero():
    with RerankServer(lambda q, docs: [1.0, 0.0], api_key=KEY) as server, hosted(server) as rr:
        assert rr.score(QUERY, DOCS[:2], return_logits=True) == [float("inf"), float("-inf")]
        assert rr.score(QUERY, DOCS[:2]) == [1.0, 0.0]


def test_a_closed_reranker_opens_a_new_session_on_the_next_call(memos):
    with hosted(memos, max_documents_per_request=2) as rr:
        first = rr.score(QUERY, DOCS)
        rr.close()
        assert rr.score(QUERY, DOCS) == first
