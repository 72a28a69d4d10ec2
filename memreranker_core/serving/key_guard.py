"""An API-key check on every path of a vLLM server, ``/classify`` (the exact mode) included.

vLLM's own ``--api-key`` guards only paths under ``/v1``, ``/v2``, ``/inference`` and ``/cohere``: ``/classify``
and ``/pooling``, which the exact mode uses, answer anyone, and ``vllm-router`` forwards them without a check of
its own. ``KeyGuard`` closes that gap inside each replica, whatever sits in front. (``vllm-router`` does not pass
a client's key on, so behind it the replicas get the router's ``--api-key`` and the clients' key is checked by
``key_proxy`` in front of the router: docs/serving.md, "Scaling out".) Load it with vLLM's ``--middleware``
option, which imports it by name in the server::

    # in the server's environment; this module needs only the standard library
    pip install --no-deps /path/to/memreranker        # or: pip install --no-deps memreranker
    export VLLM_API_KEY="$(cat /run/secrets/rerank-key)"   # not --api-key: that shows in `ps`
    python -m vllm.entrypoints.openai.api_server ... \\
        --middleware memreranker_core.serving.key_guard.KeyGuard

What it checks:

- Every HTTP request and WebSocket handshake must carry ``Authorization: Bearer <key>``, exactly one such header,
  with the key in ``VLLM_API_KEY`` (the variable vLLM itself reads for its ``/v1`` check, so one secret serves
  both). The comparison is constant-time (``hmac.compare_digest`` of SHA-256 digests: neither the key's length
  nor how much of it matched shows in the time taken).
- Except ``GET``/``HEAD`` of exactly ``/health`` and ``/metrics`` (after the server's ``--root-path``): the
  router's and an orchestrator's health checks, and Prometheus. They carry no memory text. Anything else,
  ``OPTIONS`` included, needs the key (no browser calls a reranker, so CORS preflights have nothing to pass).
- A refusal is HTTP 401 with ``WWW-Authenticate: Bearer`` and a JSON body in vLLM's error shape (a WebSocket
  handshake is closed with code 1008); the client raises ``AuthenticationError`` on it and does not retry.

Fails closed: without ``VLLM_API_KEY``, or with a key under ``MIN_KEY_LENGTH`` characters or with characters
other than printable ASCII (which no HTTP header could carry), the server does not start. The key is never
logged, never kept (only its digest is) and never part of a message or ``repr``.

Example:
    >>> import asyncio
    >>> async def app(scope, receive, send):
    ...     await send({"type": "http.response.start", "status": 200, "headers": []})
    ...     await send({"type": "http.response.body", "body": b"scores"})
    >>> digest = load_key_digest({"VLLM_API_KEY": "example-key-0123456789"})  # the server reads os.environ
    >>> guard, sent = KeyGuard(app, digest), []
    >>> async def send(message):
    ...     sent.append(message)
    >>> def request(path, key=None):
    ...     headers = [(b"authorization", b"Bearer " + key.encode())] if key else []
    ...     return {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": headers}
    >>> asyncio.run(guard(request("/classify"), None, send)); sent[0]["status"]
    401
    >>> asyncio.run(guard(request("/classify", "example-key-0123456789"), None, send)); sent[-1]["body"]
    b'scores'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

logger = logging.getLogger(__name__)

#: Where the key is read from: the variable vLLM reads for its own ``/v1`` check.
KEY_ENV = "VLLM_API_KEY"
#: Shortest key accepted: a guard on memories is no place for a short, guessable key.
MIN_KEY_LENGTH = 16
#: Paths answered without the key (``GET``/``HEAD`` only): health checks and Prometheus.
OPEN_PATHS = frozenset({"/health", "/metrics"})
OPEN_METHODS = frozenset({"GET", "HEAD"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REFUSAL = json.dumps(
    {
        "error": {
            "message": "a valid API key is required: send it in the header 'Authorization: Bearer' followed by the key",
            "type": "Unauthorized",
            "param": None,
            "code": 401,
        }
    }
).encode()


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def load_key_digest(environ: MutableMapping[str, str] | None = None) -> bytes:
    """The SHA-256 digest of the key in ``VLLM_API_KEY``.

    Raises:
        RuntimeError: The variable is unset, shorter than ``MIN_KEY_LENGTH``, or holds characters other than
            printable ASCII. The message never contains the key.
    """
    environ = os.environ if environ is None else environ
    key = environ.get(KEY_ENV, "")
    if not key:
        raise RuntimeError(
            f"memreranker key guard: set {KEY_ENV} to the API key in the server's environment (refusing to start "
            "a server without a key)"
        )
    if len(key) < MIN_KEY_LENGTH or not all("!" <= char <= "~" for char in key):
        raise RuntimeError(
            f"memreranker key guard: the key in {KEY_ENV} must be at least {MIN_KEY_LENGTH} printable ASCII "
            "characters without spaces (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return _digest(key.encode("ascii"))


def key_matches(headers: Iterable[tuple[bytes, bytes]], key_digest: bytes) -> bool:
    """Whether ``headers`` (ASGI: lower-case names, raw values) hold exactly one ``Authorization: Bearer <key>``
    with the key whose digest is ``key_digest``, compared in constant time."""
    values = [value for name, value in headers if name.lower() == b"authorization"]
    if len(values) != 1:
        return False
    scheme, _, token = values[0].strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(_digest(token.strip()), key_digest)


def is_open(scope: Scope) -> bool:
    """Whether the request may go without the key: ``GET``/``HEAD`` of exactly ``/health`` or ``/metrics``."""
    if scope["type"] != "http" or scope.get("method") not in OPEN_METHODS:
        return False
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path in OPEN_PATHS


class KeyGuard:
    """ASGI middleware: refuses every request without the key (see the module docstring).

    Args:
        app: The application it wraps (vLLM's ``--middleware`` passes it).
        key_digest: The key's SHA-256 digest; by default read from ``VLLM_API_KEY`` (``load_key_digest``).
    """

    def __init__(self, app: ASGIApp, key_digest: bytes | None = None) -> None:
        self.app = app
        self._key_digest = load_key_digest() if key_digest is None else key_digest
        logger.info("memreranker key guard: the API key is needed everywhere but GET/HEAD %s", sorted(OPEN_PATHS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_open(scope):
            await self.app(scope, receive, send)
            return
        if key_matches(scope.get("headers") or (), self._key_digest):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # policy violation: the handshake is refused
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_REFUSAL)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _REFUSAL})

    def __repr__(self) -> str:
        return f"KeyGuard(open_paths={sorted(OPEN_PATHS)})"


__all__ = ["KEY_ENV", "MIN_KEY_LENGTH", "OPEN_PATHS", "KeyGuard", "is_open", "key_matches", "load_key_digest"]
