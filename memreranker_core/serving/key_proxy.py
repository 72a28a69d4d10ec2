"""The key check in front of ``vllm-router``: a small reverse proxy that refuses clients without the API key.

``vllm-router`` (0.1.17) cannot carry a client's key to the replicas on ``/classify``: it drops the client's
``Authorization`` header, and with ``--api-key`` it sends its own key instead, to every caller's request alike
(measured: no key, a wrong key and the right key all get scores). So with the key guard on the replicas the
router needs ``--api-key`` (the replicas' key), and the clients' key is checked here, in front of it::

    client --Bearer CLIENT_KEY--> key proxy (KeyGuard) --no key--> vllm-router --Bearer REPLICA_KEY--> replicas
                                  public port                      127.0.0.1 only     each with KeyGuard

Run it on the router's host, the router bound to ``127.0.0.1`` (nothing else may reach it: it lets anyone in),
in an environment with ``uvicorn`` and ``httpx`` (vLLM's has both; this project's ``--no-deps`` install adds
nothing)::

    VLLM_API_KEY="$CLIENT_KEY" python -m memreranker_core.serving.key_proxy \\
        --upstream http://127.0.0.1:8100 --host 0.0.0.0 --port 8000

Every request but ``GET``/``HEAD`` of ``/health`` and ``/metrics`` needs ``Authorization: Bearer <key>``
(``KeyGuard``: the key from ``VLLM_API_KEY``, constant-time comparison, HTTP 401 otherwise). A request that passes
goes upstream (only the paths in ``ALLOWED``: the reranking ones, never the router's administration) with its
method, path, query and body, without its ``Authorization`` and hop-by-hop headers; the
answer comes back with its status, body and headers (``Retry-After`` included). An upstream that cannot be
reached is HTTP 502, one that does not answer within ``--timeout`` seconds 504: the client retries both. Put TLS in
front (or use ``--ssl-certfile``/``--ssl-keyfile``, passed to uvicorn) when clients are on another host.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from memreranker_core.serving.key_guard import ASGIApp, KeyGuard, Receive, Scope, Send

logger = logging.getLogger(__name__)

#: Headers never forwarded (either way): hop-by-hop ones, the client's key, and what the proxy sets itself.
DROPPED_HEADERS = frozenset(
    {
        b"authorization",
        b"proxy-authorization",
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"content-encoding",
    }
)
#: What a client may ask of the router: what MemReranker's clients send (the exact mode's ``/classify``, the plain
#: dialect's ``/v1/rerank``), the model list, health and metrics. Everything else is HTTP 404, above all the
#: router's own administration (adding or removing workers, flushing caches, profiling).
ALLOWED = frozenset(
    {
        ("POST", "/classify"),
        ("POST", "/v1/rerank"),
        ("POST", "/rerank"),
        ("GET", "/v1/models"),
        ("GET", "/health"),
        ("HEAD", "/health"),
        ("GET", "/metrics"),
        ("HEAD", "/metrics"),
    }
)
#: Largest request body accepted (a call's requests are far smaller: ``max_request_tokens`` token ids).
MAX_BODY_BYTES = 64 * 1024 * 1024


async def _respond(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": {"message": message, "type": "ProxyError", "param": None, "code": status}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


class KeyProxy:
    """ASGI app forwarding every HTTP request to ``upstream`` (wrap it in ``KeyGuard``; ``build_app`` does).

    Args:
        upstream: The router's root, e.g. ``http://127.0.0.1:8100``.
        timeout: Seconds to wait for the upstream's whole answer (the client has its own, shorter, timeouts).
        max_connections: Connections to the upstream at once.
    """

    def __init__(self, upstream: str, *, timeout: float = 600.0, max_connections: int = 256) -> None:
        self.upstream = upstream.rstrip("/")
        self.timeout = timeout
        self.max_connections = max_connections
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=10.0),
                limits=httpx.Limits(max_connections=self.max_connections),
                follow_redirects=False,
                trust_env=False,  # never an environment proxy between this proxy and the router
            )
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        if (scope.get("method"), scope.get("path")) not in ALLOWED:
            await _respond(send, 404, "not a reranking path")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                await _respond(send, 413, f"request body over {MAX_BODY_BYTES} bytes")
                return
            if not message.get("more_body"):
                break
        import httpx

        target = self.upstream + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(name, value) for name, value in scope.get("headers", ()) if name.lower() not in DROPPED_HEADERS]
        try:
            answer = await self._http().request(scope["method"], target, headers=headers, content=bytes(body))
        except httpx.TimeoutException:
            await _respond(send, 504, "the router did not answer in time")
            return
        except httpx.HTTPError:
            await _respond(send, 502, "the router cannot be reached", [(b"retry-after", b"1")])
            return
        content = answer.content
        out = [(name.lower(), value) for name, value in answer.headers.raw if name.lower() not in DROPPED_HEADERS]
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
        await send({"type": "http.response.body", "body": content})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def __repr__(self) -> str:
        return f"KeyProxy(upstream={self.upstream!r}, timeout={self.timeout})"


def build_app(upstream: str, *, timeout: float = 600.0, max_connections: int = 256) -> ASGIApp:
    """``KeyGuard(KeyProxy(upstream))``: the key from ``VLLM_API_KEY`` (``RuntimeError`` without a usable one)."""
    return KeyGuard(KeyProxy(upstream, timeout=timeout, max_connections=max_connections))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m memreranker_core.serving.key_proxy",
        description="Check the API key (VLLM_API_KEY) on every request, then forward it to vllm-router.",
    )
    parser.add_argument("--upstream", required=True, help="the router's root, e.g. http://127.0.0.1:8100")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the router's whole answer")
    parser.add_argument("--max-connections", type=int, default=256, help="connections to the router at once")
    parser.add_argument("--ssl-certfile")
    parser.add_argument("--ssl-keyfile")
    args = parser.parse_args(argv)
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    app = build_app(args.upstream, timeout=args.timeout, max_connections=args.max_connections)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        lifespan="on",
        log_level="info",
    )


if __name__ == "__main__":
    main()
