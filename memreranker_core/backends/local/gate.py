"""One model, one call at a time: callers take turns in arrival order, and a stopped call gives its turn up at once.

A local backend has one loaded model and runs one call on it at a time (two forward passes side by side would
only split the same cores or GPU between them). ``ModelGate.turn`` is a call's turn: it queues the call, waits
until every call that arrived earlier is done, and hands the model over. Each call in the queue, waiting or
running, has a ``LocalCall``, its stop signal: ``stop`` ends a wait at once and a run at its next batch boundary
(``LocalCall.check``, called between batches). Async callers stop their call by being cancelled (the
``CancelScope`` of ``memreranker_core.cancellation.run_in_thread``, which ``turn`` enters); ``ModelGate.closing``
stops every call queued, then takes the next turn itself.

Example:
    >>> gate = ModelGate()
    >>> with gate.turn() as call:
    ...     gate.waiting, call.stopped
    (0, False)
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from memreranker_core.cancellation import CancelScope
from memreranker_core.errors import CallCancelledError

__all__ = ["LocalCall", "ModelGate"]

_REASONS = {
    "closed": "the reranker was closed",
    "cancelled": "the async caller was cancelled (or timed out)",
}


class LocalCall:
    """The stop signal of one local call, waiting for the model or running on it. Thread-safe.

    Attributes:
        reason: Why the call was stopped (``"closed"``, ``"cancelled"``), or None while it may go on.
    """

    def __init__(self, condition: threading.Condition) -> None:
        self.reason: str | None = None
        self._condition = condition

    @property
    def stopped(self) -> bool:
        """Whether the call was stopped."""
        return self.reason is not None

    def stop(self, reason: str) -> None:
        """Stop the call: a wait for the model ends now, a run at its next batch boundary. The first reason stays."""
        with self._condition:
            if self.reason is None:
                self.reason = reason
            self._condition.notify_all()

    def check(self) -> None:
        """Raise ``CallCancelledError`` once the call was stopped (called between forward passes)."""
        reason = self.reason
        if reason is not None:
            raise CallCancelledError(
                f"{_REASONS.get(reason, reason)}: the local call stopped at a batch boundary and released the "
                "model; no score of it is returned"
            )


class ModelGate:
    """Hands one model to one call at a time, in arrival order (first come, first served)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queue: deque[LocalCall] = deque()  # the call holding the model first, then the waiting ones

    @property
    def waiting(self) -> int:
        """How many calls wait for the model behind the one holding it."""
        with self._condition:
            return max(0, len(self._queue) - 1)

    @contextmanager
    def turn(self, scope: CancelScope | None = None) -> Iterator[LocalCall]:
        """Wait for the model (after every call that arrived earlier), hold it for the block, then pass it on.

        Args:
            scope: The async caller's ``CancelScope`` (``cancellation.current_scope()``), if any: cancelling it
                stops this call.

        Yields:
            The call's stop signal; check it between forward passes.

        Raises:
            CallCancelledError: The call was stopped while it waited.
        """
        call = LocalCall(self._condition)
        with self._condition:
            self._queue.append(call)
        if scope is not None:
            scope.enter(call)  # stops the call at once if the caller was already cancelled
        try:
            self._wait_for(call)
            yield call
        finally:
            if scope is not None:
                scope.leave(call)
            with self._condition:
                self._queue.remove(call)
                self._condition.notify_all()

    @contextmanager
    def closing(self) -> Iterator[None]:
        """Stop every call queued (waiting ones now, the running one at its next batch boundary), then hold the
        model for the block (to release it): the next turn after the running call's."""
        with self._condition:
            for call in self._queue:
                call.stop("closed")
        with self.turn():
            yield

    def _wait_for(self, call: LocalCall) -> None:
        with self._condition:
            while self._queue[0] is not call and not call.stopped:
                self._condition.wait()
        call.check()
