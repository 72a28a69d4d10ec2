"""The hosted backend's parts on their own: token budget, reading answers, dialects, error mapping, retry timing."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from memreranker_core import errors
from memreranker_core.backends.hosted.chunking import estimate_tokens, plan_chunks, truncate_to_tokens
from memreranker_core.backends.hosted.dialects import DIALECTS
from memreranker_core.backends.hosted.failures import (
    MIN_REDACTABLE,
    SHORT_SECRET_NOTE,
    Failure,
    classify,
    quote,
    redact,
    service_words,
)
from memreranker_core.backends.hosted.options import HostedOptions
from memreranker_core.backends.hosted.responses import Answer, log_odds, parse_retry_after, probabilities, read_response
from memreranker_core.backends.hosted.transport import MAX_RETRY_AFTER, Transport


# ----------------------------------------------------------------- token budget (the estimate: test_hosted_chunking)
def test_truncation_keeps_the_head_within_the_budget():
    text = "word " * 500
    cut = truncate_to_tokens(text, 50)
    assert text.startswith(cut)
    assert 0 < len(cut) < len(text)
    assert estimate_tokens(cut) <= 50
    assert estimate_tokens(text[: len(cut) + 4]) > 50 or len(cut) + 4 > len(text)


def test_truncation_leaves_short_text_alone():
    assert truncate_to_tokens("short text", 100) == "short text"


def test_chunks_respect_token_budget_and_count_and_keep_order():
    costs = [5, 5, 5, 20, 1, 1, 1, 1, 1]
    chunks = plan_chunks(costs, max_tokens=12, max_documents=3)
    assert [position for chunk in chunks for position in chunk] == list(range(len(costs)))
    for chunk in chunks:
        assert len(chunk) <= 3
        assert sum(costs[p] for p in chunk) <= 12 or len(chunk) == 1
    assert [3] in chunks  # over budget alone: its own chunk, never dropped


# ----------------------------------------------------------------- result checks
def test_results_in_any_order_map_back_to_positions():
    results = [{"index": 2, "score": 0.1}, {"index": 0, "relevance_score": 0.7}, {"index": 1, "score": 0.4}]
    assert probabilities(Answer(200, {"results": results}), [10, 11, 12]) == [0.7, 0.4, 0.1]


@pytest.mark.parametrize(
    ("results", "named"),
    [
        ([{"index": 0, "score": 0.5}], "no score for document(s) [11]"),
        ([{"index": 0, "score": 0.5}, {"index": 0, "score": 0.5}], "[10] scored more than once"),
        ([{"index": 0, "score": 0.5}, {"index": 5, "score": 0.5}], "index(es) [5] out of range"),
        ([{"index": 0, "score": 0.5}, {"index": True, "score": 0.5}], "index(es) [True] out of range"),
        ([{"index": 0, "score": 0.5}, {"index": "1", "score": 0.5}], "index(es) ['1'] out of range"),
        ([{"index": 0, "score": 0.5}, {"index": 1, "score": 1.5}], "document 11: 1.5"),
        ([{"index": 0, "score": 0.5}, {"index": 1, "score": float("nan")}], "document 11: nan"),
        ([{"index": 0, "score": 0.5}, {"index": 1, "score": "0.3"}], "document 11: '0.3'"),
        ([{"index": 0, "score": 0.5}, {"index": 1}], "document 11: None"),
    ],
)
def test_untrustworthy_results_are_refused_naming_the_document(results, named):
    outcome = probabilities(Answer(200, {"results": results}), [10, 11])
    assert isinstance(outcome, Failure) and outcome.error_class is errors.MalformedResponseError
    assert named in outcome.what


def test_log_odds_is_exact_near_the_ends_and_infinite_at_them():
    assert log_odds(0.5) == 0.0
    assert log_odds(1.0) == math.inf
    assert log_odds(0.0) == -math.inf
    for p in (1e-12, 0.01, 0.3, 0.99, 1 - 1e-12):
        assert 1 / (1 + math.exp(-log_odds(p))) == pytest.approx(p, rel=1e-9)


# ----------------------------------------------------------------- dialects
@pytest.mark.parametrize(
    ("style", "base", "url"),
    [
        ("memos", "https://memos.memtensor.cn/api/openmem/v1", "https://memos.memtensor.cn/api/openmem/v1/rerank"),
        ("vllm", "http://gpu:8000", "http://gpu:8000/v1/rerank"),  # /v1: vLLM's --api-key guards it
        ("vllm", "http://gpu:8000/v1/", "http://gpu:8000/v1/rerank"),
        ("jina", "https://api.jina.ai", "https://api.jina.ai/v1/rerank"),
        ("jina", "https://api.jina.ai/v1", "https://api.jina.ai/v1/rerank"),
        ("cohere", "https://api.cohere.com", "https://api.cohere.com/v2/rerank"),
        ("cohere", "https://api.cohere.com/v2/rerank", "https://api.cohere.com/v2/rerank"),
        ("tei", "http://tei:8080", "http://tei:8080/rerank"),
    ],
)
def test_each_dialect_builds_its_endpoint(style, base, url):
    assert DIALECTS[style].url(base) == url


def test_memos_sends_token_auth_and_others_bearer():
    assert DIALECTS["memos"].headers("k")["Authorization"] == "Token k"
    for style in ("vllm", "jina", "cohere", "tei"):
        assert DIALECTS[style].headers("k")["Authorization"] == "Bearer k"
    assert "Authorization" not in DIALECTS["vllm"].headers(None)


@pytest.mark.parametrize("style", sorted(DIALECTS))
def test_no_dialect_asks_for_top_n(style):
    body = DIALECTS[style].body("m", "q", ["a", "b"])
    assert "top_n" not in body
    assert body.get("texts" if style == "tei" else "documents") == ["a", "b"]


def test_results_are_found_under_results_data_results_data_or_a_bare_list():
    items = [{"index": 0, "score": 0.5}]
    for payload in ({"results": items}, {"code": 0, "data": {"results": items}}, {"code": 200, "data": items}, items):
        assert probabilities(Answer(200, payload), [0]) == [0.5]
    no_results = probabilities(Answer(200, {"id": "x"}), [0])
    assert isinstance(no_results, Failure) and "no 'results'" in no_results.what
    not_a_list = probabilities(Answer(200, {"results": "nope"}), [0])
    assert isinstance(not_a_list, Failure) and "not a list" in not_a_list.what


def test_body_code_zero_and_200_mean_success_and_others_are_typed():
    assert isinstance(read_response(200, None, b'{"code": 0, "results": []}'), Answer)
    assert isinstance(read_response(200, None, b'{"code": 200, "data": []}'), Answer)
    assert isinstance(read_response(200, None, b'{"results": []}'), Answer)
    assert read_response(200, None, b'{"code": "40132"}').error_class is errors.AuthenticationError
    weird = read_response(200, None, b'{"code": "weird"}')
    assert weird.error_class is errors.MalformedResponseError and "non-numeric body code 'weird'" in weird.what


# ----------------------------------------------------------------- error mapping
@pytest.mark.parametrize(
    ("status", "code", "error", "retryable"),
    [
        (200, 40132, errors.AuthenticationError, False),
        (200, 40100, errors.AuthenticationError, False),
        (200, 40300, errors.RateLimitError, True),
        (200, 40301, errors.RateLimitError, True),
        (200, 40304, errors.QuotaExceededError, False),
        (200, 40305, errors.BadRequestError, False),
        (200, 40000, errors.BadRequestError, False),
        (200, 50000, errors.ServerError, True),
        (200, 50002, errors.ServerError, True),
        (200, 40999, errors.BadRequestError, False),
        (401, None, errors.AuthenticationError, False),
        (403, None, errors.AuthenticationError, False),
        (402, None, errors.QuotaExceededError, False),
        (404, None, errors.BadRequestError, False),
        (408, None, errors.ServiceTimeoutError, True),
        (413, None, errors.BadRequestError, False),
        (422, None, errors.BadRequestError, False),
        (429, None, errors.RateLimitError, True),
        (429, 40000, errors.RateLimitError, True),
        (500, None, errors.ServerError, True),
        (502, None, errors.ServerError, True),
        (503, 50002, errors.ServerError, True),
        (400, 400, errors.BadRequestError, False),
        (301, None, errors.BadRequestError, False),
    ],
)
def test_statuses_and_body_codes_map_to_typed_errors(status, code, error, retryable):
    failure = classify(status=status, code=code, detail="details")
    assert failure.error_class is error
    assert failure.retryable is retryable
    raised = failure.to_error("https://svc/rerank", 2, None)
    assert isinstance(raised, error)
    assert raised.status_code == status
    assert "https://svc/rerank" in str(raised) and ": " in str(raised)  # what happened, then what to do


def test_messages_never_carry_the_key():
    failure = classify(status=200, code=40132, detail="key sk-SECRET-123 is invalid")
    assert "sk-SECRET-123" not in str(failure.to_error("https://svc", 1, ["sk-SECRET-123"]))
    assert redact("a sk-SECRET-1 b sk-SECRET-1", ["sk-SECRET-1"]) == "a *** b ***"


SECRET = "sk-SECRET-0123456789"


@pytest.mark.parametrize(
    "text",
    [
        "x" * 290 + SECRET,  # straddles the cut: redacting after cutting leaves "sk-SECRE"
        "<p>" + "y" * 150 + f"{SECRET[:5]}<b>{SECRET[5:9]}</b><span class='k'>{SECRET[9:]}</span></p>",
        f"key:\n  {SECRET[:10]}\n\t{SECRET[10:]} refused",
    ],
    ids=["at-the-limit", "split-by-tags", "split-by-whitespace"],
)
def test_service_words_remove_the_secret_from_the_whole_text_before_cutting(text):
    shown = "".join(service_words(text, [SECRET], limit=300).split())
    assert all(SECRET[i : i + 5] not in shown for i in range(len(SECRET) - 4)), shown


def test_every_secret_is_removed_and_the_others_words_stay():
    words = service_words("a sk-SECRET-0123456789 b tenant-SECRET-77 c", [SECRET, "tenant-SECRET-77", None])
    assert words == "a *** b *** c"


def test_a_secret_too_short_to_redact_drops_the_services_words_instead_of_mangling_them():
    assert len("k2x") < MIN_REDACTABLE
    assert service_words("parameter k2x-mode is wrong", ["k2x"]) == ""
    assert quote("parameter k2x-mode is wrong", ["k2x"]) == SHORT_SECRET_NOTE
    assert redact("our own words about k2x-mode", ["k2x"]) == "our own words about k2x-mode"
    failure = classify(status=400, code=None, detail=quote("k2x is wrong", ["k2x"]))
    assert "k2x" not in failure.what and "too short to redact" in failure.what


def test_read_response_separates_success_html_and_body_codes():
    assert read_response(200, None, b'{"results": []}') == Answer(200, {"results": []})
    assert read_response(200, None, b"<html>oops</html>").error_class is errors.MalformedResponseError
    assert read_response(200, None, b'{"code": 40132, "message": "bad"}').error_class is errors.AuthenticationError
    html = read_response(502, None, b"<html><h1>Bad Gateway</h1></html>")
    assert html.error_class is errors.ServerError and html.retryable and "Bad Gateway" in html.what
    assert read_response(429, "7", b"").retry_after == 7.0


def test_deeply_nested_json_and_undecodable_bodies_are_typed_failures():
    deep = read_response(200, None, b"[" * 100_000 + b"]" * 100_000)
    assert deep.error_class is errors.MalformedResponseError and "nested too deeply" in deep.what
    assert read_response(200, None, b"\xff\xfe{}").error_class is errors.MalformedResponseError
    assert read_response(503, None, b"[" * 100_000).error_class is errors.ServerError


def test_an_echoed_secret_in_a_result_value_or_key_is_not_quoted():
    payload = {"results": [{"index": 0, "score": SECRET}], SECRET: 1}
    outcome = probabilities(Answer(200, payload), [0], [SECRET])
    assert isinstance(outcome, Failure) and SECRET[:8] not in outcome.what
    keys_only = probabilities(Answer(200, {SECRET: 1}), [0], [SECRET])
    assert isinstance(keys_only, Failure) and SECRET[:8] not in keys_only.what


# ----------------------------------------------------------------- retry timing
def test_retry_after_reads_seconds_fractions_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(later) <= 31
    past = format_datetime(datetime.now(timezone.utc) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past) == 0.0


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    transport = Transport(HostedOptions.from_given({"max_retries": 5, "backoff_factor": 1.0}), loopback=True)
    for attempt in (1, 2, 3, 4):
        delays = {transport.backoff_delay(attempt, None) for _ in range(20)}
        base = 2 ** (attempt - 1)
        assert all(base / 2 <= delay <= base for delay in delays)
        assert len(delays) > 1  # jitter
    assert transport.backoff_delay(1, 5.0) >= 5.0
    assert transport.backoff_delay(1, MAX_RETRY_AFTER + 1) is None  # too long to wait: give up with the hint
