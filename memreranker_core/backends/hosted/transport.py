"""The HTTP side of the hosted backend: one ``httpx.AsyncClient``, time and size limits, the one retry layer.

Every request runs on the backend's event loop (``loop.LoopThread``), for sync and async callers alike, so every
wait below is an ``await`` that a deadline, ``close()`` or a cancellation cuts at once:

- **Retries** happen here and only here (``httpx`` makes none): timeouts, connections refused or dropped before
  or during the answer, HTTP 408, 429 and 5xx, and service body codes that mean "rate limited" or "server error"
  (which the Memos API sends with HTTP 200). Before attempt ``n + 1`` it waits ``backoff_factor * 2**(n - 1)``
  seconds with jitter (half to all of it), capped at 20 s, and at least what ``Retry-After`` asks for; a
  ``Retry-After`` over 60 s, or a wait that would pass the call's deadline, ends the call at once with the last
  failure. Other 4xx and untrustworthy answers are never retried.
- **One attempt** is bounded by ``connect_timeout`` (connecting), ``read_timeout`` (each wait for bytes) and, in
  whole, by ``attempt_timeout`` and the call's deadline, whichever comes first: a server that trickles its answer
  a byte at a time cannot hold a call. The answer is streamed and refused past ``max_response_bytes`` once
  decoded (a small gzip body cannot expand into memory).
- **Connections**: at most ``max_connections`` requests of the whole backend are in flight at once (every call
  and caller together); a request waits for a free one within its call's deadline. ``max_concurrency`` (per call)
  is applied by the backend.

Proxies: explicit ``proxies`` (``requests``-style keys: ``https``, ``http``, ``all``, ``scheme://host``,
``no_proxy``) are resolved once for the one host this backend talks to. Otherwise the environment's
(``HTTPS_PROXY``, ``NO_PROXY``, ...) apply, except for a loopback ``base_url``, which never goes through an
environment proxy (it would receive the key and the memories meant for this machine). Redirects are never followed.

Secrets stay out of the HTTP library's logs too: ``httpx`` logs each request's URL (with its query, which may hold a
credential) and ``httpcore`` logs response headers at DEBUG; a filter on those loggers removes every secret this
process's hosted backends send (the key, extra header values, the URL's query) from their records.

Example:
    >>> from memreranker_core.backends.hosted.options import HostedOptions
    >>> transport = Transport(HostedOptions.from_given({}), loopback=False)
    >>> transport.stats()
    {'requests': 0, 'retries': 0, 'failures': 0, 'aborted': 0}
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import ssl
import threading
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memreranker_core.backends.hosted.calls import Call, deadline
from memreranker_core.backends.hosted.failures import (
    Failure,
    connection_failure,
    redact,
    time_limit_failure,
    too_large,
)
from memreranker_core.backends.hosted.responses import Answer, read_response
from memreranker_core.errors import AuthenticationError

if TYPE_CHECKING:
    import httpx

    from memreranker_core.backends.hosted.options import HostedOptions

logger = logging.getLogger(__name__)

#: Most connections of one ``httpx`` client (see ``Transport.clients``).
SHARD_CONNECTIONS = 16
#: Longest wait between two attempts, in seconds.
BACKOFF_MAX = 20.0
#: A ``Retry-After`` longer than this ends the call instead of waiting.
MAX_RETRY_AFTER = 60.0
#: The loggers of the HTTP library whose records may carry a URL's query or a response header.
HTTP_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy", "httpcore.socks")


@dataclass(frozen=True)
class Pool:
    """The HTTP clients of one event loop: ``max_connections`` split over clients of at most
    ``SHARD_CONNECTIONS`` connections each (``httpcore`` scans its whole pool for every request it assigns, which
    at 100 concurrent requests on one 128-connection pool cost more than the requests themselves), the requests in
    flight on each, and the semaphore of ``max_connections``."""

    clients: list[httpx.AsyncClient]
    in_flight: list[int]
    slots: asyncio.Semaphore

    @classmethod
    def open(cls, options: HostedOptions, proxy: str | None, *, trust_env: bool) -> Pool:
        import httpx

        shards = math.ceil(options.max_connections / SHARD_CONNECTIONS)
        per_shard = math.ceil(options.max_connections / shards)
        timeout = httpx.Timeout(
            connect=options.connect_timeout, read=options.read_timeout, write=options.read_timeout, pool=None
        )
        clients = [
            httpx.AsyncClient(
                timeout=timeout,
                limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
                verify=tls_context(options.verify),
                proxy=proxy,
                trust_env=trust_env and not options.proxies,
                follow_redirects=False,
            )
            for _ in range(shards)
        ]
        return cls(clients, [0] * shards, asyncio.Semaphore(options.max_connections))


class Transport:
    """Posts JSON to one service with time and size limits, retries and error mapping. Runs on one event loop.

    Args:
        options: The backend's ``HostedOptions``: every limit is read from it.
        loopback: Whether the service is on this machine (then no environment proxy is used).
        host: The service's host, for ``proxies``' per-host keys and ``no_proxy``.
        scheme: The service's scheme, for ``proxies``' keys.
    """

    def __init__(self, options: HostedOptions, *, loopback: bool, host: str = "", scheme: str = "https") -> None:
        self.options = options
        self.loopback = loopback
        self.proxy = pick_proxy(dict(options.proxies), scheme, host) if options.proxies else None
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pool] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._random = random.Random()
        self._stats = {"requests": 0, "retries": 0, "failures": 0, "aborted": 0}
        self._secrets: set[str] = set()
        LOG_REDACTOR.watch(self)

    # ----------------------------------------------------------------- the clients (on the loop)
    def pool(self) -> Pool:
        """The pooled clients of the running loop, opened on first use (call it on the loop).

        Kept per loop: after ``close()`` a new call may start the backend's next loop while the old one still
        closes its own clients, and neither may touch the other's.
        """
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = Pool.open(self.options, self.proxy, trust_env=not self.loopback)
        return pool

    async def aclose(self) -> None:
        """Close the running loop's pooled connections; the next request there opens new clients."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            for client in pool.clients:
                await client.aclose()

    def stats(self) -> dict[str, int]:
        """Counts since creation: HTTP requests started, retries made, requests that failed after their retries,
        and requests aborted in flight (their call was cancelled, closed, past its deadline, or another request of
        it failed): the service may or may not have received those."""
        with self._lock:
            return dict(self._stats)

    def secrets(self) -> frozenset[str]:
        """Every secret this transport has sent (for the log filter)."""
        with self._lock:
            return frozenset(self._secrets)

    def remember(self, secrets: Sequence[str | None]) -> None:
        """Add ``secrets`` to what the HTTP library's log records are cleaned of."""
        with self._lock:
            self._secrets.update(secret for secret in secrets if secret)

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[httpx.AsyncClient]:
        """A connection slot of ``max_connections`` (waits for one), on the client with the fewest requests in
        flight (it always has a free connection: the slots are no more than the clients' connections)."""
        pool = self.pool()
        async with pool.slots:
            index = min(range(len(pool.clients)), key=pool.in_flight.__getitem__)
            pool.in_flight[index] += 1
            try:
                yield pool.clients[index]
            finally:
                pool.in_flight[index] -= 1

    # ----------------------------------------------------------------- requests
    async def post_json(
        self,
        url: str,
        body: Any,
        headers: Mapping[str, str],
        *,
        where: str,
        call: Call,
        secrets: Sequence[str | None] = (),
    ) -> Answer:
        """POST ``body`` as JSON and return the service's answer, retrying what may succeed on another attempt.

        Args:
            url: Endpoint URL.
            body: JSON-serializable request body.
            headers: Request headers (the key travels here, never in messages).
            where: The URL as shown in messages (no credentials).
            call: The call this request belongs to (its deadline).
            secrets: The API key and other secrets, removed from every message.

        Raises:
            HostedBackendError: A subclass saying what failed, after the retries it deserved.
        """
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        try:
            sent = {name: value.encode("latin-1") for name, value in headers.items()}
        except UnicodeEncodeError:  # the value (a key) is not repeated
            raise Failure(
                AuthenticationError,
                False,
                "a request header (the API key or an extra header) holds characters HTTP cannot carry",
                "copy the key again: keys are plain ASCII",
            ).to_error(where, 1, secrets) from None
        attempt = 0
        while True:
            attempt += 1
            async with self._slot() as client:
                outcome = await self._attempt(client, url, data, sent, call, secrets)
            if isinstance(outcome, Answer):
                return outcome
            delay = self.backoff_delay(attempt, outcome.retry_after) if outcome.retryable else None
            if delay is not None and delay >= call.remaining():
                delay = None  # the wait would pass the call's deadline: this failure is the answer
            if delay is None or attempt > self.options.max_retries:
                self._count("failures")
                raise outcome.to_error(where, attempt, secrets)
            self._count("retries")
            logger.warning(
                "rerank request to %s failed: %s; retry %d of %d in %.3f s",
                where,
                redact(outcome.what, secrets),
                attempt,
                self.options.max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    def backoff_delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; ``None`` when ``Retry-After`` asks for too long."""
        base = min(BACKOFF_MAX, self.options.backoff_factor * 2 ** (attempt - 1))
        with self._lock:
            delay = base * (0.5 + 0.5 * self._random.random())
        if retry_after is not None:
            if retry_after > MAX_RETRY_AFTER:
                return None
            delay = max(delay, retry_after)
        return delay

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        url: str,
        data: bytes,
        headers: Mapping[str, bytes],
        call: Call,
        secrets: Sequence[str | None],
    ) -> Answer | Failure:
        """One HTTP exchange, bounded in whole: the service's answer, or the ``Failure`` it amounts to."""
        import httpx

        options = self.options
        limit = min(options.attempt_seconds, call.remaining())
        if limit <= 0:
            return time_limit_failure("call_timeout", call.deadline_s)
        answering = False  # whether the answer's headers arrived (a drop after them is "in the middle")
        self._count("requests")
        try:
            async with deadline(limit):
                async with client.stream("POST", url, content=data, headers=headers) as response:
                    answering = True
                    content = await read_capped(response, options.max_response_bytes)
        except asyncio.CancelledError:
            self._count("aborted")
            raise
        except TimeoutError:
            if limit < options.attempt_seconds:
                return time_limit_failure("call_timeout", call.deadline_s)
            return time_limit_failure("attempt_timeout", options.attempt_seconds)
        except httpx.ConnectTimeout:
            return connection_failure(f"could not connect within connect_timeout={options.connect_timeout:g}s", True)
        except (httpx.ReadTimeout, httpx.WriteTimeout):
            return time_limit_failure("read_timeout", options.read_timeout)
        except httpx.ProxyError:
            return connection_failure("the proxy refused or failed the connection; check proxies / HTTPS_PROXY", True)
        except httpx.ConnectError as exc:
            if _caused_by(exc, ssl.SSLError):
                return connection_failure(
                    "the TLS handshake or certificate check failed; for a private CA pass verify='/path/to/ca.pem'",
                    False,
                )
            return connection_failure("could not connect to the service", True)
        except (httpx.DecodingError, httpx.TransportError) as exc:
            if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
                return connection_failure(f"the request could not be sent: {type(exc).__name__}", False)
            if answering:
                return connection_failure("the connection was dropped in the middle of the answer", True)
            return connection_failure("the connection was dropped before the answer", True)
        if content is None:
            return too_large(options.max_response_bytes)
        return read_response(response.status_code, response.headers.get("Retry-After"), content, secrets)


async def read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The decoded body, or ``None`` as soon as it is over ``limit`` bytes (nothing more is read)."""
    declared = response.headers.get("Content-Length")
    identity = response.headers.get("Content-Encoding", "identity").strip().lower() in ("", "identity")
    if identity and declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
    return b"".join(parts)


def tls_context(verify: bool | str) -> ssl.SSLContext | bool:
    """``verify`` as ``httpx`` takes it: ``True`` (its default context), ``False``, or a context on a CA bundle
    file or directory."""
    if isinstance(verify, bool):
        return verify
    import os

    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def pick_proxy(proxies: Mapping[str, str], scheme: str, host: str) -> str | None:
    """The proxy for ``scheme://host`` from a ``requests``-style mapping, or ``None`` (``no_proxy`` names the host,
    or no key applies).

    Example:
        >>> pick_proxy({"https": "http://proxy:3128", "no_proxy": "internal.example"}, "https", "api.example")
        'http://proxy:3128'
        >>> pick_proxy({"https": "http://proxy:3128", "no_proxy": "internal.example"}, "https", "internal.example")
    """
    bypass = [entry.strip().lower().lstrip(".") for entry in proxies.get("no_proxy", "").split(",") if entry.strip()]
    if "*" in bypass or any(host == entry or host.endswith("." + entry) for entry in bypass):
        return None
    for key in (f"{scheme}://{host}", scheme, f"all://{host}", "all"):
        if proxies.get(key):
            return proxies[key]
    return None


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _LogRedactor(logging.Filter):
    """Removes the secrets of every live transport from the HTTP library's log records (see the module's note)."""

    def __init__(self) -> None:
        super().__init__()
        self._transports: weakref.WeakSet[Transport] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._installed = False

    def watch(self, transport: Transport) -> None:
        with self._lock:
            self._transports.add(transport)
            if not self._installed:
                for name in HTTP_LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._installed = True

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = [secret for transport in self._transports for secret in transport.secrets()]
        if secrets:
            record.msg = redact(record.getMessage(), secrets)
            record.args = None
        return True


LOG_REDACTOR = _LogRedactor()

__all__ = [
    "BACKOFF_MAX",
    "HTTP_LOGGERS",
    "MAX_RETRY_AFTER",
    "Pool",
    "Transport",
    "pick_proxy",
    "read_capped",
    "tls_context",
]
