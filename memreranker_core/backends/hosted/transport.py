"""The HTTP side of the hosted backend: one pooled ``requests`` session, time limits, size limit and retries.

Two layers retry, each where it can decide:

- ``urllib3``'s ``Retry`` (mounted on the session) retries *connection establishment* (refused, DNS, connect
  timeout), where the request never left and trying again is always safe.
- ``Transport.post_json`` retries what needs the answer to decide: timeouts, connections dropped before or during
  the answer, HTTP 408, 429 and 5xx, and service body codes that mean "rate limited" or "server error" (which the
  Memos API sends with HTTP 200). It waits ``backoff_factor * 2**(attempt - 1)`` seconds with jitter (half to all
  of it), capped at 20 s, and at least what ``Retry-After`` asks for; a ``Retry-After`` over 60 s, or a wait that
  would pass the call's deadline, ends the call at once. Other 4xx and untrustworthy answers are never retried.

Limits of one attempt: ``read_timeout`` for each wait on the socket, and ``attempt_timeout`` for the whole
exchange: a watchdog shuts the attempt's socket down at its deadline, so a server that trickles its answer (or its
headers) a byte at a time cannot hold a call. The answer is streamed and refused past ``max_response_bytes`` once
decoded (a small gzip body cannot expand into memory). Closing the backend or cancelling the async caller aborts
the exchanges in flight the same way (see ``calls``).

Proxies: explicit ``proxies`` are used as given. Otherwise the environment's (``HTTPS_PROXY``, ``NO_PROXY``, ...)
apply, except for a loopback ``base_url``, which never goes through an environment proxy (it would receive the key
and the memories meant for this machine).

The session is shared by every thread; requests and urllib3's pool are safe for concurrent ``post`` calls.

Example:
    >>> transport = Transport(connect_timeout=5, read_timeout=30, max_retries=3, backoff_factor=0.5, pool_size=8)
    >>> transport.stats()
    {'requests': 0, 'retries': 0, 'failures': 0}
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from memreranker_core.backends.hosted.calls import Call
from memreranker_core.backends.hosted.failures import (
    Failure,
    cancelled,
    connection_failure,
    time_limit_failure,
    too_large,
)
from memreranker_core.backends.hosted.responses import Answer, read_response
from memreranker_core.backends.hosted.watchdog import Exchange, watched_adapter_class
from memreranker_core.errors import AuthenticationError

logger = logging.getLogger(__name__)

#: Longest wait between two attempts, in seconds.
BACKOFF_MAX = 20.0
#: A ``Retry-After`` longer than this ends the call instead of waiting.
MAX_RETRY_AFTER = 60.0
#: Bytes read from the socket at a time.
READ_CHUNK = 64 * 1024
#: ``max_response_bytes`` when none is given.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class Transport:
    """Posts JSON to a ``/rerank`` endpoint with time and size limits, retries and error mapping. Thread-safe.

    Args:
        connect_timeout: Seconds to establish a connection.
        read_timeout: Seconds to wait for the next bytes of the answer.
        max_retries: Extra attempts after the first.
        backoff_factor: Base of the exponential backoff, in seconds.
        pool_size: Connections kept open per host.
        attempt_timeout: Seconds one attempt may take in whole (default ``connect_timeout + 2 * read_timeout``).
        max_response_bytes: Largest decoded answer accepted.
        proxies: ``requests``-style proxies; ``None``: the environment's (``HTTPS_PROXY``, ``NO_PROXY``, ...).
        verify: ``requests``' ``verify``: ``True``, ``False`` or a CA bundle path.
        no_proxy: A host that must never go through an environment proxy (the loopback service's own host).
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_retries: int,
        backoff_factor: float,
        pool_size: int,
        attempt_timeout: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxies: Mapping[str, str] | None = None,
        verify: bool | str = True,
        no_proxy: str | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.attempt_timeout = attempt_timeout if attempt_timeout is not None else connect_timeout + 2 * read_timeout
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.pool_size = pool_size
        self.max_response_bytes = max_response_bytes
        if proxies:
            self.proxies: dict[str, str] | None = dict(proxies)
        else:  # requests then reads the environment's proxies, minus this host
            self.proxies = {"no_proxy": no_proxy} if no_proxy else None
        self.verify = verify
        self._session: Any = None
        self._lock = threading.Lock()
        self._random = random.Random()
        self._stats = {"requests": 0, "retries": 0, "failures": 0}

    # ----------------------------------------------------------------- session
    def session(self) -> Any:
        """The shared ``requests.Session``, created on first use."""
        with self._lock:
            if self._session is None:
                self._session = self._new_session()
            return self._session

    def _new_session(self) -> Any:
        import requests
        from urllib3.util.retry import Retry

        settings: dict[str, Any] = dict(
            total=None,
            connect=self.max_retries,
            read=False,
            status=0,
            other=0,
            redirect=False,
            backoff_factor=self.backoff_factor,
            respect_retry_after_header=False,
            raise_on_status=False,
            raise_on_redirect=False,
        )
        try:
            retry = Retry(**settings, backoff_max=BACKOFF_MAX, backoff_jitter=self.backoff_factor / 2)
        except TypeError:  # urllib3 1.26 has neither argument
            retry = Retry(**settings)
        adapter = watched_adapter_class()(pool_connections=4, pool_maxsize=self.pool_size, max_retries=retry)
        session = requests.Session()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        """Close pooled connections; the next call opens a new session."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def stats(self) -> dict[str, int]:
        """Counts since creation: HTTP requests sent, retries made, calls that failed after retries."""
        with self._lock:
            return dict(self._stats)

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    # ----------------------------------------------------------------- calls
    def post_json(
        self,
        url: str,
        body: Any,
        headers: dict[str, str],
        *,
        where: str,
        secrets: Sequence[str | None] = (),
        call: Call | None = None,
    ) -> Answer:
        """POST ``body`` as JSON and return the service's answer, retrying what may succeed on another attempt.

        Args:
            url: Endpoint URL.
            body: JSON-serializable request body.
            headers: Request headers (the key travels here, never in messages).
            where: The URL as shown in messages (no credentials).
            secrets: The API key and other secrets, removed from every message.
            call: The call this request belongs to (deadline, stop signal); default a fresh one.

        Raises:
            HostedBackendError: A subclass saying what failed, after the retries it deserved
                (``CallCancelledError`` when the call was closed or cancelled).
        """
        if call is None:  # a request on its own: its deadline is what its attempts and waits may take at most
            call = Call((self.max_retries + 1) * self.attempt_timeout + self.max_retries * MAX_RETRY_AFTER)
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        session = self.session()
        attempt = 0
        while True:
            call.check(where)
            attempt += 1
            outcome = self._attempt(session, url, data, headers, call, secrets)
            if isinstance(outcome, Answer):
                return outcome
            call.check(where)
            attempts = attempt + (self.max_retries if outcome.already_retried else 0)
            delay = self.backoff_delay(attempt, outcome.retry_after) if outcome.retryable else None
            if delay is not None and delay >= call.remaining():
                delay = None  # the wait would pass the call's deadline: this failure is the answer
            if delay is None or attempt > self.max_retries:
                self._count("failures")
                raise outcome.to_error(where, attempts, secrets) from None
            self._count("retries")
            logger.warning(
                "rerank request to %s failed: %s; retry %d of %d in %.3f s",
                where,
                outcome.what,
                attempt,
                self.max_retries,
                delay,
            )
            call.sleep(delay)

    def backoff_delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; ``None`` when ``Retry-After`` asks for too long."""
        base = min(BACKOFF_MAX, self.backoff_factor * 2 ** (attempt - 1))
        with self._lock:
            delay = base * (0.5 + 0.5 * self._random.random())
        if retry_after is not None:
            if retry_after > MAX_RETRY_AFTER:
                return None
            delay = max(delay, retry_after)
        return delay

    def _attempt(
        self, session: Any, url: str, data: bytes, headers: dict[str, str], call: Call, secrets: Sequence[str | None]
    ) -> Answer | Failure:
        """One HTTP exchange, bounded in whole: the service's answer, or the ``Failure`` it amounts to."""
        limit = min(self.attempt_timeout, call.remaining())
        if limit <= 0:
            return time_limit_failure("call_timeout", call.deadline_s)
        by_call = limit < self.attempt_timeout
        exchange = Exchange()
        watchdog = threading.Timer(limit, exchange.abort, ("deadline",))
        watchdog.daemon = True
        forget = call.on_stop(functools.partial(exchange.abort, "cancelled"))
        self._count("requests")
        watchdog.start()
        try:
            with exchange.running():
                outcome = self._exchange(session, url, data, headers, min(limit, self.connect_timeout), limit, secrets)
        finally:
            watchdog.cancel()
            forget()
        if isinstance(outcome, Answer) or exchange.reason is None or outcome.already_retried:
            return outcome  # a whole answer counts even at the deadline; so does urllib3 giving up on connecting
        if exchange.reason == "deadline":
            return (
                time_limit_failure("call_timeout", call.deadline_s)
                if by_call
                else time_limit_failure("attempt_timeout", self.attempt_timeout)
            )
        return cancelled("the call was stopped while a request was in flight")

    def _exchange(
        self,
        session: Any,
        url: str,
        data: bytes,
        headers: dict[str, str],
        connect_timeout: float,
        limit: float,
        secrets: Sequence[str | None],
    ) -> Answer | Failure:
        import requests

        try:
            response = session.post(
                url,
                data=data,
                headers=headers,
                timeout=(connect_timeout, min(self.read_timeout, limit)),
                allow_redirects=False,
                auth=_keep_headers,
                stream=True,
                proxies=self.proxies,
                verify=self.verify,
            )
            try:
                content = _read_capped(response, self.max_response_bytes)
            finally:
                response.close()
        except UnicodeError:  # a header that is not Latin-1; its value (a key) is not repeated
            return Failure(
                AuthenticationError,
                False,
                "a request header (the API key or an extra header) holds characters HTTP cannot carry",
                "copy the key again: keys are plain ASCII",
            )
        except requests.exceptions.ConnectTimeout:
            detail = f"could not connect within connect_timeout={self.connect_timeout:g}s"
            return connection_failure(detail, False, already_retried=True)
        except requests.exceptions.ReadTimeout:
            return time_limit_failure("read_timeout", self.read_timeout)
        except requests.exceptions.ProxyError:
            return connection_failure("the proxy refused or failed the connection; check proxies / HTTPS_PROXY", True)
        except requests.exceptions.SSLError:
            return connection_failure(
                "the TLS handshake or certificate check failed; for a private CA pass verify='/path/to/ca.pem'",
                False,
            )
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            return connection_failure("the connection was dropped in the middle of the answer", True)
        except requests.exceptions.ConnectionError as exc:
            if _is_read_timeout(exc):
                return time_limit_failure("read_timeout", self.read_timeout)
            if _connect_was_retried(exc):
                return connection_failure("could not connect to the service", False, already_retried=True)
            return connection_failure("the connection was dropped before the answer", True)
        except requests.exceptions.RequestException as exc:
            return connection_failure(f"the request could not be sent: {type(exc).__name__}", False)
        if content is None:
            return too_large(self.max_response_bytes)
        return read_response(response.status_code, response.headers.get("Retry-After"), content, secrets)


def _read_capped(response: Any, limit: int) -> bytes | None:
    """The decoded body, or ``None`` as soon as it is over ``limit`` bytes (nothing more is read)."""
    declared = response.headers.get("Content-Length")
    identity = response.headers.get("Content-Encoding", "identity").strip().lower() in ("", "identity")
    if identity and declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    for part in response.iter_content(READ_CHUNK):
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
    return b"".join(parts)


def _keep_headers(request: Any) -> Any:
    """An explicit no-op auth, so that requests never swaps in credentials from ``~/.netrc``."""
    return request


def _causes(exc: BaseException) -> list[Any]:
    """The exception, its arguments and their ``reason`` attributes (how requests wraps urllib3 errors)."""
    found: list[Any] = [exc]
    for arg in exc.args:
        found.append(arg)
        reason = getattr(arg, "reason", None)
        if reason is not None:
            found.append(reason)
    return found


def _is_read_timeout(exc: BaseException) -> bool:
    from urllib3.exceptions import ReadTimeoutError

    return any(isinstance(item, ReadTimeoutError) for item in _causes(exc))


def _connect_was_retried(exc: BaseException) -> bool:
    """True when urllib3 gave up establishing a connection (after its own retries)."""
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

    items = _causes(exc)
    return any(isinstance(item, MaxRetryError) for item in items) and any(
        isinstance(item, (NewConnectionError, ConnectTimeoutError)) for item in items
    )
