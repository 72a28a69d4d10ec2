"""One hosted call in flight: its deadline and its stop signal (``close()``, async cancellation, a failed chunk).

Every attempt and every chunk of a call checks its ``Call`` first, and waits (backoff, results of other chunks)
through it, so that a stop wakes them at once. A call closed or cancelled also aborts the HTTP exchanges it has
in flight (their sockets are shut down), so nothing more reaches the service for it; after a failed chunk or past
the deadline, the other chunks stop before their next attempt.

Async callers: ``memreranker_core.cancellation.run_in_thread`` is ``asyncio.to_thread`` plus a ``CancelScope``;
when the awaiting task is cancelled, the hosted call running in the worker thread stops before its next attempt
or chunk (``MemReranker.ascore`` / ``arerank`` run through it).

Example:
    >>> call = Call(deadline_s=30.0)
    >>> call.stopped, call.remaining() > 29
    (False, True)
    >>> call.stop("closed")
    >>> call.stopped
    True
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from memreranker_core.cancellation import CancelScope, current_scope, run_in_thread
from memreranker_core.errors import CallCancelledError

_REASONS = {
    "closed": "the reranker was closed while this call was in flight",
    "cancelled": "the async caller was cancelled",
    "failed": "another request of this call failed",
    "timeout": "the call ran past call_timeout",
}


#: Stop reasons that also abort the exchanges in flight.
ABORTING = frozenset({"closed", "cancelled"})


class Call:
    """The state one ``score`` call shares with its chunks and attempts. Thread-safe; use it as a context manager
    (it then also stops when the async caller that runs it through ``run_in_thread`` is cancelled).

    Args:
        deadline_s: Seconds the whole call may take (``call_timeout``).
    """

    def __init__(self, deadline_s: float) -> None:
        self.deadline = time.monotonic() + deadline_s
        self.deadline_s = deadline_s
        self.reason: str | None = None
        self.condition = threading.Condition()
        self._aborts: set[Callable[[], None]] = set()
        self._scope = current_scope()

    def __enter__(self) -> Call:
        if self._scope is not None:
            self._scope.enter(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._scope is not None:
            self._scope.leave(self)
        with self.condition:
            self._aborts.clear()

    @property
    def stopped(self) -> bool:
        """Whether the call was stopped (closed, cancelled, past its deadline handling, or a chunk failed)."""
        return self.reason is not None

    def remaining(self) -> float:
        """Seconds left before the call's deadline (negative once it has passed)."""
        return self.deadline - time.monotonic()

    def stop(self, reason: str) -> None:
        """Stop the call: wake its waits; when it was closed or cancelled, also abort its exchanges in flight
        (after a failed chunk or past the deadline, they end on their own and are discarded). The first reason
        is kept."""
        with self.condition:
            if self.reason is None:
                self.reason = reason
            aborts = list(self._aborts) if reason in ABORTING else []
            self.condition.notify_all()
        for abort in aborts:
            abort()

    def check(self, where: str) -> None:
        """Raise ``CallCancelledError`` once the call was stopped, whatever the reason."""
        reason = self.reason
        if reason is not None:
            raise CallCancelledError(
                f"{_REASONS.get(reason, reason)}; nothing more was sent to {where}. Call again: a closed reranker "
                "opens a new session on its next call"
            )

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the call stops first; return whether it is still running."""
        end = time.monotonic() + seconds
        with self.condition:
            while self.reason is None:
                left = end - time.monotonic()
                if left <= 0:
                    return True
                self.condition.wait(left)
        return False

    def on_stop(self, abort: Callable[[], None]) -> Callable[[], None]:
        """Register ``abort`` to run if the call is closed or cancelled; returns the function that unregisters it."""
        with self.condition:
            if self.reason is None:
                self._aborts.add(abort)
                return functools.partial(self._discard, abort)
            aborting = self.reason in ABORTING
        if aborting:
            abort()
        return lambda: None

    def _discard(self, abort: Callable[[], None]) -> None:
        with self.condition:
            self._aborts.discard(abort)


__all__ = ["Call", "CancelScope", "current_scope", "run_in_thread"]
