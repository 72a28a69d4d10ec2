"""One hosted call in flight: its deadline, its task on the backend's loop, and why it was stopped.

A call runs as one task on the backend's event loop (``loop.LoopThread``); its requests are awaited inside that
task, so stopping the task stops every wait of the call at once: a request in flight (its connection is closed),
a backoff sleep, a wait for a free connection. ``close()`` stops each call with the reason ``"closed"`` (its caller
gets ``CallCancelledError``); an async caller that is cancelled cancels the call's task through
``asyncio.wrap_future``.

Example:
    >>> call = Call(deadline_s=30.0)
    >>> call.stopped, call.remaining() > 29
    (False, True)
    >>> call.stop("closed")
    >>> call.stopped
    True
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from memreranker_core.errors import CallCancelledError

_REASONS = {
    "closed": "the reranker was closed while this call was in flight",
    "cancelled": "the async caller was cancelled",
}

#: ``asyncio.timeout`` (Python 3.11+), else ``anyio.fail_after`` (installed with ``httpx``): both raise
#: ``TimeoutError`` when the block runs past its delay.
if hasattr(asyncio, "timeout"):
    deadline: Callable[[float], Any] = asyncio.timeout
else:  # pragma: no cover - Python 3.10
    from anyio import fail_after as deadline


class Call:
    """The state of one ``score`` call, shared by the thread that made it and its task on the loop. Thread-safe.

    Args:
        deadline_s: Seconds the whole call may take (``call_timeout``).
    """

    def __init__(self, deadline_s: float) -> None:
        self.deadline = time.monotonic() + deadline_s
        self.deadline_s = deadline_s
        self.reason: str | None = None
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        """Whether the call was stopped (closed or cancelled)."""
        return self.reason is not None

    def remaining(self) -> float:
        """Seconds left before the call's deadline (negative once it has passed)."""
        return self.deadline - time.monotonic()

    def started(self) -> None:
        """Record the running task as this call's (call it from the task); stopped already: cancel it now."""
        task = asyncio.current_task()
        with self._lock:
            self._task, self._loop = task, asyncio.get_running_loop()
            stopped = self.reason is not None
        if stopped and task is not None:
            task.cancel()

    def stop(self, reason: str) -> None:
        """Stop the call from any thread: cancel its task (the first reason is kept)."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            task, loop = self._task, self._loop
        if task is not None and loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile: the task is gone with it
                pass

    def cancelled_error(self, where: str) -> CallCancelledError:
        """The error a stopped call's caller gets."""
        what = _REASONS.get(self.reason or "closed", self.reason)
        return CallCancelledError(
            f"{what}; nothing more was sent to {where}. Call again: a closed reranker opens a new session on its "
            "next call"
        )


__all__ = ["Call", "deadline"]
