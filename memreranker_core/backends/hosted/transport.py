"""The HTTP side of the hosted backend: one pooled ``requests`` session, timeouts and retries.

Two layers retry, each where it can decide:

- ``urllib3``'s ``Retry`` (mounted on the session) retries *connection establishment* (refused, DNS, connect
  timeout), where the request never left and trying again is always safe.
- ``Transport.post_json`` retries what needs the answer to decide: read timeouts, connections dropped before or
  during the answer, HTTP 408, 429 and 5xx, and service body codes that mean "rate limited" or "server error"
  (which the Memos API sends with HTTP 200). It waits ``backoff_factor * 2**(attempt - 1)`` seconds with jitter
  (half to all of it), capped at 20 s, and at least what ``Retry-After`` asks for; a ``Retry-After`` over 60 s ends
  the call at once with ``RateLimitError.retry_after`` set. Other 4xx and untrustworthy answers are never retried.

The session is shared by every thread; requests and urllib3's pool are safe for concurrent ``post`` calls.

Example:
    >>> transport = Transport(connect_timeout=5, read_timeout=30, max_retries=3, backoff_factor=0.5, pool_size=8)
    >>> transport.stats()
    {'requests': 0, 'retries': 0, 'failures': 0}
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

from memreranker_core.backends.hosted.dialects import body_code, body_message
from memreranker_core.backends.hosted.failures import (
    Failure,
    classify,
    connection_failure,
    malformed,
    redact,
    timeout_failure,
)

logger = logging.getLogger(__name__)

#: Longest wait between two attempts, in seconds.
BACKOFF_MAX = 20.0
#: A ``Retry-After`` longer than this ends the call instead of waiting.
MAX_RETRY_AFTER = 60.0
_NOT_JSON = object()


class Transport:
    """Posts JSON to a ``/rerank`` endpoint with timeouts, retries and error mapping. Thread-safe.

    Args:
        connect_timeout: Seconds to establish a connection.
        read_timeout: Seconds to wait for the answer.
        max_retries: Extra attempts after the first.
        backoff_factor: Base of the exponential backoff, in seconds.
        pool_size: Connections kept open per host.
    """

    def __init__(
        self, *, connect_timeout: float, read_timeout: float, max_retries: int, backoff_factor: float, pool_size: int
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.pool_size = pool_size
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
        from requests.adapters import HTTPAdapter
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
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_size, max_retries=retry)
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
    def post_json(self, url: str, body: Any, headers: dict[str, str], *, where: str, secret: str | None) -> Any:
        """POST ``body`` as JSON and return the decoded answer, retrying what may succeed on another attempt.

        Args:
            url: Endpoint URL.
            body: JSON-serializable request body.
            headers: Request headers (the key travels here, never in messages).
            where: The URL as shown in messages (no credentials).
            secret: The API key, scrubbed from every message.

        Raises:
            HostedBackendError: A subclass saying what failed, after the retries it deserved.
        """
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        session = self.session()
        attempt = 0
        while True:
            attempt += 1
            self._count("requests")
            outcome = self._attempt(session, url, data, headers)
            if not isinstance(outcome, Failure):
                return outcome
            attempts = attempt + (self.max_retries if outcome.already_retried else 0)
            delay = self._delay(attempt, outcome.retry_after) if outcome.retryable else None
            if delay is None or attempt > self.max_retries:
                self._count("failures")
                raise outcome.to_error(where, attempts, secret) from None
            self._count("retries")
            logger.warning(
                "rerank request to %s failed: %s; retry %d of %d in %.3f s",
                where,
                redact(outcome.what, secret),
                attempt,
                self.max_retries,
                delay,
            )
            time.sleep(delay)

    def _attempt(self, session: Any, url: str, data: bytes, headers: dict[str, str]) -> Any:
        """One HTTP exchange: the decoded answer, or the ``Failure`` it amounts to."""
        import requests

        try:
            response = session.post(
                url,
                data=data,
                headers=headers,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
                auth=_keep_headers,
            )
            try:
                content = response.content
            finally:
                response.close()
        except requests.exceptions.ConnectTimeout:
            detail = f"could not connect within connect_timeout={self.connect_timeout:g}s"
            return connection_failure(detail, False, already_retried=True)
        except requests.exceptions.ReadTimeout:
            return timeout_failure(self.read_timeout)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            return connection_failure("the connection was dropped in the middle of the answer", True)
        except requests.exceptions.ConnectionError as exc:
            if _is_read_timeout(exc):
                return timeout_failure(self.read_timeout)
            if _connect_was_retried(exc):
                return connection_failure("could not connect to the service", False, already_retried=True)
            return connection_failure("the connection was dropped before the answer", True)
        except requests.exceptions.RequestException as exc:
            return connection_failure(f"the request could not be sent: {type(exc).__name__}", False)
        return interpret(response.status_code, response.headers.get("Retry-After"), content)

    def _delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; ``None`` when ``Retry-After`` asks for too long."""
        base = min(BACKOFF_MAX, self.backoff_factor * 2 ** (attempt - 1))
        with self._lock:
            delay = base * (0.5 + 0.5 * self._random.random())
        if retry_after is not None:
            if retry_after > MAX_RETRY_AFTER:
                return None
            delay = max(delay, retry_after)
        return delay


def interpret(status: int, retry_after_header: str | None, content: bytes) -> Any:
    """The decoded answer of a successful exchange, or the ``Failure`` that ``status`` and the body amount to."""
    retry_after = parse_retry_after(retry_after_header)
    try:
        payload: Any = json.loads(content.decode("utf-8")) if content else _NOT_JSON
    except (UnicodeDecodeError, ValueError):
        payload = _NOT_JSON
    if 200 <= status < 300:
        if payload is _NOT_JSON:
            return malformed(f"HTTP {status} with a body that is not JSON ({preview(content)})")
        code = body_code(payload)
        if code == -1:
            return malformed(f"HTTP {status} with a non-numeric body code {payload.get('code')!r}")
        if code is not None:
            return classify(status=status, code=code, detail=body_message(payload)[:300], retry_after=retry_after)
        return payload
    if payload is _NOT_JSON:
        return classify(status=status, code=None, detail=preview(content), retry_after=retry_after)
    code = body_code(payload)
    detail = body_message(payload)[:300]
    return classify(status=status, code=code if code != -1 else None, detail=detail, retry_after=retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds, fractional allowed, or an HTTP date); ``None`` if
    absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def preview(content: bytes, limit: int = 160) -> str:
    """A short, tag-free excerpt of a body, for messages."""
    text = content.decode("utf-8", "replace")
    text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(text.split())
    if not text:
        return "empty body"
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


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
