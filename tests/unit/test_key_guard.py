"""The key guard (``memreranker_core.serving.key_guard``) and the key proxy in front of ``vllm-router``, as ASGI
apps called directly: which requests pass, what a refusal looks like, and that the key never shows. The real
servers (vLLM with ``--middleware``, the router, the proxy process) are in tests/integration/test_vllm_router.py."""

from __future__ import annotations

import asyncio
import json

import pytest

from memreranker_core.serving.key_guard import KEY_ENV, KeyGuard, load_key_digest
from memreranker_core.serving.key_proxy import KeyProxy

KEY = "guard-test-key-0123456789"
DIGEST = load_key_digest({KEY_ENV: KEY})


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"passed"})


def call(app, path="/classify", method="POST", headers=(), scope_type="http", root_path=""):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b'{"input": [[1, 2]]}', "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": scope_type,
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
    }
    asyncio.run(app(scope, receive, send))
    return sent


def bearer(key):
    return [("Authorization", f"Bearer {key}")]


def test_the_guard_lets_only_the_right_bearer_key_through_on_every_path():
    guard = KeyGuard(_app, DIGEST)
    for path in ("/classify", "/pooling", "/v1/rerank", "/tokenize", "/health/../classify", "/metrics/x", "/"):
        assert call(guard, path, headers=bearer(KEY))[-1]["body"] == b"passed"
        for headers in ([], bearer("wrong-key-0123456789xyz"), bearer(KEY[:-1]), [("Authorization", KEY)]):
            refusal = call(guard, path, headers=headers)
            assert refusal[0]["status"] == 401, (path, headers)
            assert (b"www-authenticate", b"Bearer") in refusal[0]["headers"]
            body = json.loads(refusal[1]["body"])
            assert body["error"]["code"] == 401 and KEY not in json.dumps(body)


def test_the_guard_accepts_any_case_of_the_scheme_but_refuses_two_authorization_headers():
    guard = KeyGuard(_app, DIGEST)
    assert call(guard, headers=[("Authorization", f"bearer {KEY}")])[-1]["body"] == b"passed"
    assert call(guard, headers=[*bearer(KEY), *bearer("other-key-0123456789abc")])[0]["status"] == 401
    assert call(guard, headers=[*bearer(KEY), *bearer(KEY)])[0]["status"] == 401


def test_the_guard_opens_only_get_and_head_of_health_and_metrics():
    guard = KeyGuard(_app, DIGEST)
    for path in ("/health", "/metrics"):
        assert call(guard, path, "GET")[-1]["body"] == b"passed"
        assert call(guard, path, "HEAD")[-1]["body"] == b"passed"
        assert call(guard, path, "POST")[0]["status"] == 401
        assert call(guard, "/api" + path, "GET", root_path="/api")[-1]["body"] == b"passed"
    for path in ("/healthz", "/health/", "/v1/models", "/version", "/ping"):
        assert call(guard, path, "GET")[0]["status"] == 401, path
    assert call(guard, "/classify", "OPTIONS")[0]["status"] == 401  # no CORS preflight without the key


def test_the_guard_closes_a_websocket_handshake_without_the_key():
    guard = KeyGuard(_app, DIGEST)
    assert call(guard, "/v1/realtime", "GET", scope_type="websocket") == [{"type": "websocket.close", "code": 1008}]


def test_the_guard_refuses_to_start_without_a_usable_key_and_never_shows_it(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(RuntimeError, match=KEY_ENV):
        KeyGuard(_app)
    for bad in ("short-key", "a key with spaces in it", "ключ-ключ-ключ-ключ-ключ"):
        with pytest.raises(RuntimeError) as caught:
            load_key_digest({KEY_ENV: bad})
        assert bad not in str(caught.value)
    monkeypatch.setenv(KEY_ENV, KEY)
    guard = KeyGuard(_app)
    assert KEY not in repr(guard) and KEY not in repr(vars(guard))


def test_the_proxy_checks_the_key_and_forwards_the_request_without_it():
    httpx = pytest.importorskip("httpx")
    seen = []

    def upstream(request):
        seen.append(request)
        return httpx.Response(503, json={"busy": True}, headers={"Retry-After": "2"})

    proxy = KeyProxy("http://127.0.0.1:9")
    proxy._client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    guarded = KeyGuard(proxy, DIGEST)
    assert call(guarded, headers=[])[0]["status"] == 401 and not seen
    answer = call(guarded, "/classify", headers=[*bearer(KEY), ("Content-Type", "application/json")])
    assert answer[0]["status"] == 503 and (b"retry-after", b"2") in answer[0]["headers"]
    assert json.loads(answer[1]["body"]) == {"busy": True}
    (request,) = seen
    assert str(request.url) == "http://127.0.0.1:9/classify" and request.method == "POST"
    assert "authorization" not in request.headers and request.content == b'{"input": [[1, 2]]}'
    admin = (("POST", "/add_worker"), ("POST", "/remove_worker"), ("GET", "/workers"), ("GET", "/classify"))
    for method, path in admin:
        assert call(guarded, path, method, headers=bearer(KEY))[0]["status"] == 404  # never the router's admin
    assert len(seen) == 1


def test_the_proxy_answers_502_when_the_router_cannot_be_reached():
    httpx = pytest.importorskip("httpx")

    def unreachable(request):
        raise httpx.ConnectError("refused", request=request)

    proxy = KeyProxy("http://127.0.0.1:9")
    proxy._client = httpx.AsyncClient(transport=httpx.MockTransport(unreachable))
    answer = call(proxy, "/classify")
    assert answer[0]["status"] == 502
