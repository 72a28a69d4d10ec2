"""What a hostile or careless service, network or caller used to break, against the real loopback server:
echoed keys, trickled and oversized answers, deep JSON, odd keys, environment proxies, close() and cancellation
during a call, and the proxies / CA bundle / headers options."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading

import pytest

from memreranker_core import MemReranker, errors
from tests.support.memories import HOSTED_DOCS, HOSTED_QUERY
from tests.support.paths import PATHS, on_path
from tests.support.rerank_server import (
    Fault,
    RecordingListener,
    RerankServer,
    overlap_score,
    self_signed_certificate,
)

KEY = "sk-test-SECRET-4242"
QUERY, DOCS = HOSTED_QUERY, HOSTED_DOCS
#: A generous guard against a hang (never a timing threshold: a correct run ends long before it).
HANG_GUARD_S = 60


#: Which API the fault suite runs through (see ``tests.support.paths``): set for each test by ``_path``.
PATH = "sync"


@pytest.fixture(autouse=True, params=PATHS)
def _path(request, monkeypatch):
    """Every test of this module runs on the sync and the async path."""
    monkeypatch.setattr(sys.modules[__name__], "PATH", request.param)
    return request.param


def hosted(server: RerankServer, **options) -> MemReranker:
    settings = {"base_url": server.base_url, "api_key": KEY, "backoff_factor": 0.001, "read_timeout": 2.0, **options}
    return on_path(MemReranker(backend="hosted", api_style=server.api_style, **settings), PATH)


def leaked_pieces(text: str, secret: str, size: int = 6) -> list[str]:
    """Every ``size``-character piece of ``secret`` found in ``text`` once whitespace is removed."""
    flat = "".join(text.split())
    return [secret[i : i + size] for i in range(len(secret) - size + 1) if secret[i : i + size] in flat]


@pytest.fixture
def memos():
    with RerankServer(api_key=KEY) as running:
        yield running


class Gate:
    """A scorer that holds every request until ``release()``; ``entered`` is set once one has arrived."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    def __call__(self, query, documents):
        self.entered.set()
        self.released.wait(HANG_GUARD_S)
        return overlap_score(query, documents)


# ----------------------------------------------------------------- echoed keys
@pytest.mark.parametrize(
    "fault",
    [
        Fault.body_code(40132, message="x" * 285 + f"{KEY} is invalid"),  # the key straddles the 300-char cut
        Fault.body_code(50000, message="y" * 290 + KEY),
        Fault.html(502, page="<html><body>" + "z" * 145 + f"{KEY}</body></html>"),  # straddles the 160 preview
        Fault.html(502, page=f"<html><body>bad key {KEY[:7]}<b>{KEY[7:12]}</b><i>{KEY[12:]}</i></body></html>"),
        Fault.html(502, page=f"<p>bad key {KEY[:9]}\n  {KEY[9:]}</p>"),
    ],
    ids=["json-near-the-limit", "json-at-the-end", "html-near-the-preview-limit", "html-split-by-tags", "line-break"],
)
def test_an_echoed_key_is_redacted_before_any_message_is_cut(memos, fault, caplog):
    memos.inject(fault, fault)
    caplog.set_level(logging.DEBUG)
    with hosted(memos, max_retries=1) as rr, pytest.raises(errors.HostedBackendError) as caught:
        rr.score(QUERY, DOCS)
    assert leaked_pieces(str(caught.value), KEY) == []
    assert leaked_pieces(caplog.text, KEY) == []  # the WARNING retry log too


def test_a_short_key_does_not_mangle_messages_and_is_never_shown():
    short = "k2x"
    with RerankServer(api_key=short) as server:
        server.inject(Fault.body_code(40000, status=400, message="parameter k2x-mode is wrong for k2x"))
        rr = MemReranker(backend="hosted", base_url=server.base_url, api_key=short)
        with pytest.raises(errors.BadRequestError) as caught:
            rr.score(QUERY, DOCS)
    message = str(caught.value)
    assert "k2x" not in message and "***" not in message
    assert "too short to redact" in message and "HTTP 400" in message


def test_a_query_in_base_url_reaches_the_service_after_the_dialect_path(memos):
    with hosted(memos, base_url=memos.base_url + "?tenant=acme&region=eu") as rr:
        assert rr.score(QUERY, DOCS) == pytest.approx(overlap_score(QUERY, DOCS), rel=1e-12)
        assert "tenant" not in rr.describe()["base_url"]
        assert rr.settings()["base_url"].endswith("?tenant=acme&region=eu")  # serialized as given
    assert (memos.received[0].path, memos.received[0].query) == ("/api/openmem/v1/rerank", "tenant=acme&region=eu")


# ----------------------------------------------------------------- time limits
@pytest.mark.parametrize("fault", [Fault.trickle(0.1), Fault.trickle_headers(0.1)], ids=["body", "headers"])
def test_an_answer_trickled_a_byte_at_a_time_is_cut_off_by_the_attempt_deadline(memos, fault):
    memos.inject(fault)
    # Every byte arrives well within read_timeout; only the whole-attempt bound (default connect + 2 x read) ends it.
    with hosted(memos, connect_timeout=0.5, read_timeout=0.5, max_retries=0) as rr:
        with pytest.raises(errors.ServiceTimeoutError, match="attempt_timeout") as caught:
            rr.score(QUERY, DOCS)
    assert "raise attempt_timeout" in str(caught.value)


def test_a_trickled_attempt_is_retried_like_a_timeout(memos):
    memos.inject(Fault.trickle(0.1))
    with hosted(memos, read_timeout=0.5, attempt_timeout=0.5, max_retries=1) as rr:
        assert rr.score(QUERY, DOCS) == pytest.approx(overlap_score(QUERY, DOCS), rel=1e-12)
        assert rr.backend.stats()["retries"] == 1


@pytest.mark.parametrize("per_request", [None, 2], ids=["one-request", "four-chunks"])
def test_the_whole_call_is_bounded_by_call_timeout(memos, per_request):
    memos.inject(*[Fault.slow(0.6)] * 40)
    options = {"read_timeout": 0.3, "max_retries": 10, "call_timeout": 1.0, "max_documents_per_request": per_request}
    with hosted(memos, **options) as rr, pytest.raises(errors.ServiceTimeoutError) as caught:
        rr.score(QUERY, DOCS)
    # cut by the deadline, or ended at once because the next backoff wait would have passed it
    assert "call_timeout" in str(caught.value) or "the last of" in str(caught.value)
    chunks = 1 if per_request is None else 4
    assert rr.backend.stats()["requests"] <= 5 * chunks  # 1 s holds about 3 attempts of 0.3 s, not 11


# ----------------------------------------------------------------- size and shape
def test_a_gzip_bomb_is_refused_past_max_response_bytes_without_reading_it_whole(memos):
    memos.inject(Fault.gzip_bomb(40 * 1024 * 1024))  # ~40 KB on the wire, 40 MiB decoded: over the 32 MiB default
    with hosted(memos) as rr, pytest.raises(errors.ResponseTooLargeError, match="max_response_bytes"):
        rr.score(QUERY, DOCS)
    assert issubclass(errors.ResponseTooLargeError, errors.MalformedResponseError)


def test_max_response_bytes_is_an_option_and_a_normal_answer_passes_under_it(memos):
    memos.inject(Fault.padded(8192))
    with hosted(memos, max_response_bytes=4096) as rr:
        with pytest.raises(errors.ResponseTooLargeError):
            rr.score(QUERY, DOCS)
        assert rr.score(QUERY, DOCS) == pytest.approx(overlap_score(QUERY, DOCS), rel=1e-12)
        assert rr.describe()["max_response_bytes"] == 4096


def test_a_deeply_nested_json_answer_is_a_malformed_response(memos):
    memos.inject(Fault.deep_json(100_000))
    with hosted(memos) as rr, pytest.raises(errors.MalformedResponseError, match="nested too deeply"):
        rr.score(QUERY, DOCS)


# ----------------------------------------------------------------- keys and headers
@pytest.mark.parametrize("key", ["sk-ключ-0123456789", "sk-\u2028-0123456789", "sk-é-0123456789"])
def test_a_key_an_http_header_cannot_carry_is_a_typed_error_that_does_not_hold_it(memos, key):
    with hosted(memos, api_key=key) as rr, pytest.raises(errors.AuthenticationError) as caught:
        rr.score(QUERY, DOCS)
    assert key not in str(caught.value) and "0123456789" not in str(caught.value)
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert memos.requests == []


def test_extra_headers_are_sent_and_treated_as_secrets(memos):
    secret = "tenant-SECRET-0099"
    with hosted(memos, headers={"X-Tenant": secret}) as rr:
        rr.score(QUERY, DOCS)
        shown = repr(rr) + json.dumps(rr.describe()) + json.dumps(rr.settings())
    assert memos.received[0].headers["x-tenant"] == secret
    assert secret not in shown and rr.describe()["headers_set"] is True and "headers" not in rr.settings()


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer x"}, {"X-Bad": "a\r\nInjected: 1"}, {"X-Key": "ключ"}, {"Bad Name": "v"}]
)
def test_headers_that_cannot_or_must_not_be_sent_are_refused_at_construction(headers):
    with pytest.raises(errors.ConfigurationError) as caught:
        MemReranker(backend="hosted", base_url="http://127.0.0.1:9", headers=headers)
    assert "ключ" not in str(caught.value) and "Injected" not in str(caught.value)


def test_verify_takes_a_ca_bundle_path_that_exists(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert MemReranker(backend="hosted", api_key=KEY, verify=str(bundle)).describe()["verify"] == str(bundle)
    with pytest.raises(errors.ConfigurationError, match="CA bundle"):
        MemReranker(backend="hosted", api_key=KEY, verify=str(tmp_path / "missing.pem"))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    pair = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    if pair is None:
        pytest.skip("the openssl command is not available to make a test certificate")
    return pair


def test_https_with_a_private_ca_works_through_verify_and_is_refused_without_it(certificate):
    with RerankServer(api_key=KEY, tls=certificate) as server:
        with hosted(server, verify=certificate[0]) as rr:
            assert rr.score(QUERY, DOCS) == pytest.approx(overlap_score(QUERY, DOCS), rel=1e-12)
        with hosted(server) as rr, pytest.raises(errors.ServiceConnectionError, match="verify=") as caught:
            rr.score(QUERY, DOCS)
        assert "attempts" not in str(caught.value)  # a certificate refusal is not retried
    assert len(server.requests) == 1


def test_the_attempt_deadline_also_cuts_a_trickled_https_answer(certificate):
    with RerankServer(api_key=KEY, tls=certificate) as server:
        server.inject(Fault.trickle(0.1))
        with hosted(server, verify=certificate[0], connect_timeout=0.5, read_timeout=0.5, max_retries=0) as rr:
            with pytest.raises(errors.ServiceTimeoutError, match="attempt_timeout"):
                rr.score(QUERY, DOCS)


# ----------------------------------------------------------------- proxies
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_environment_proxies_never_receive_loopback_requests(memos, monkeypatch, host):
    with RecordingListener() as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        with hosted(memos, base_url=memos.base_url.replace("127.0.0.1", host)) as rr:
            assert rr.score(QUERY, DOCS) == pytest.approx(overlap_score(QUERY, DOCS), rel=1e-12)
    assert proxy.connections == 0
    assert memos.received[0].headers["authorization"] == f"Token {KEY}"


def test_environment_proxies_still_apply_to_a_remote_service(monkeypatch):
    with RecordingListener() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        rr = MemReranker(backend="hosted", base_url="https://svc.example/v1", api_key=KEY, max_retries=0)
        with pytest.raises(errors.ServiceConnectionError, match="proxy"):
            rr.score(QUERY, DOCS)
    assert [line.rsplit(" ", 1)[0] for line in proxy.first_lines] == ["CONNECT svc.example:443"]  # a tunnel only


def test_explicit_proxies_are_used_and_kept_secret(memos):
    with RecordingListener() as proxy:
        with hosted(memos, proxies={"http": proxy.url}, max_retries=0) as rr:
            with pytest.raises(errors.ServerError):  # the stand-in proxy answers 502
                rr.score(QUERY, DOCS)
            assert rr.describe()["proxies_set"] is True and proxy.url not in json.dumps(rr.describe())
    assert proxy.connections == 1
    assert proxy.first_lines[0].startswith(f"POST {memos.base_url}/rerank")
    assert memos.requests == []


# ----------------------------------------------------------------- close() and cancellation
@pytest.mark.parametrize("concurrency", [1, 2], ids=["sequential", "concurrent"])
def test_close_during_a_multi_request_call_ends_it_promptly_with_a_typed_error(concurrency):
    gate = Gate()
    outcome: list[object] = []
    with RerankServer(gate, api_key=KEY) as server:
        rr = hosted(server, max_documents_per_request=2, max_concurrency=concurrency)

        def call() -> None:
            try:
                outcome.append(rr.score(QUERY, DOCS))
            except Exception as exc:
                outcome.append(exc)

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        assert gate.entered.wait(HANG_GUARD_S)
        rr.close()
        worker.join(HANG_GUARD_S)
        hung = worker.is_alive()
        gate.released.set()
        assert not hung, "the call was still waiting after close()"
        assert len(outcome) == 1 and isinstance(outcome[0], errors.CallCancelledError), outcome
        assert "closed" in str(outcome[0])
        assert rr.score(QUERY, DOCS) == pytest.approx(overlap_score(QUERY, DOCS), rel=1e-12)  # reopens


async def _cancel_after_first_request(server: RerankServer, gate: Gate, awaitable) -> None:
    task = asyncio.ensure_future(awaitable)
    while not gate.entered.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.released.set()
    await asyncio.get_running_loop().shutdown_default_executor()  # waits for the worker thread to finish


@pytest.mark.parametrize("concurrency", [1, 2], ids=["sequential", "concurrent"])
async def test_a_cancelled_arerank_sends_no_more_requests(concurrency):
    gate = Gate()
    with RerankServer(gate, api_key=KEY) as server:
        rr = hosted(server, max_documents_per_request=2, max_concurrency=concurrency)  # 4 chunks
        await _cancel_after_first_request(server, gate, rr.arerank(QUERY, DOCS))
        assert 1 <= len(server.requests) <= concurrency  # only what was already in flight when it was cancelled
        assert rr.backend.stats()["retries"] == 0
        assert rr.score(QUERY, DOCS) == pytest.approx(overlap_score(QUERY, DOCS), rel=1e-12)  # still usable


# ----------------------------------------------------------------- the HTTP library's own logs
def test_the_http_librarys_debug_logs_never_show_the_key_or_a_credential_in_the_base_url_query(memos, caplog):
    token = "qs-SECRET-TOKEN-9931"
    caplog.set_level(logging.DEBUG)
    rr = hosted(
        memos, base_url=f"{memos.base_url}?access_token={token}&tenant=acme", headers={"X-Tenant": "h-SECRET-5"}
    )
    memos.inject(401)
    with pytest.raises(errors.AuthenticationError):
        rr.score(QUERY, DOCS)
    assert rr.score(QUERY, DOCS) == pytest.approx(overlap_score(QUERY, DOCS), rel=1e-12)
    assert memos.received[-1].query == f"access_token={token}&tenant=acme"  # the query did reach the service
    assert {"httpx", "httpcore.http11"} <= {record.name for record in caplog.records}  # the library did log
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert token not in logged and KEY not in logged and "h-SECRET-5" not in logged
    assert "access_token" not in logged
