"""Stopping work that runs in a worker thread when its async caller gives up (standard library only).

``run_in_thread`` is ``asyncio.to_thread`` plus a ``CancelScope`` in the worker's context. When the awaiting task
is cancelled (by ``task.cancel()``, or by ``asyncio.wait_for`` / ``asyncio.timeout`` when its time is up), the scope
is cancelled, and every call a backend registered in it (``CancelScope.enter``) is stopped. ``MemReranker.ascore``
and ``arerank`` run a backend without a native async path through it: the local backend's call then leaves its
wait for the model at once, or stops at its next batch boundary and hands the model to the next caller. A
backend that cannot stop early simply never registers.

Example:
    >>> import asyncio
    >>> asyncio.run(run_in_thread(sum, [1, 2, 3]))
    6
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Stoppable(Protocol):
    """A call in flight that can be stopped, with the reason."""

    def stop(self, reason: str) -> None:
        """Stop the call (``reason``: ``"cancelled"`` from a ``CancelScope``); it must return at once."""
        ...


class CancelScope:
    """What ``run_in_thread`` puts in the worker's context: cancelling it stops every call made there.

    Backend-neutral (standard library only), so the core's async methods can set one for any backend; a backend
    that can stop early reads ``current_scope()`` when a call starts, ``enter``s its call and ``leave``s when done.
    A call entered after the cancellation is stopped as it enters (the worker may start after its caller gave up).

    Example:
        >>> class Call:
        ...     def stop(self, reason):
        ...         print("stopped:", reason)
        >>> scope = CancelScope()
        >>> scope.enter(Call())
        >>> scope.cancel()
        stopped: cancelled
    """

    def __init__(self) -> None:
        self.cancelled = False
        self._calls: set[Stoppable] = set()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop every call entered, and every call entered from now on."""
        with self._lock:
            self.cancelled = True
            calls = list(self._calls)
        for call in calls:
            call.stop("cancelled")

    def enter(self, call: Stoppable) -> None:
        """Register ``call`` to be stopped on cancellation (at once, if the scope was cancelled already)."""
        with self._lock:
            self._calls.add(call)
            cancelled = self.cancelled
        if cancelled:
            call.stop("cancelled")

    def leave(self, call: Stoppable) -> None:
        """Forget ``call`` (it is done)."""
        with self._lock:
            self._calls.discard(call)


_SCOPE: contextvars.ContextVar[CancelScope | None] = contextvars.ContextVar("memreranker_cancel_scope", default=None)


def current_scope() -> CancelScope | None:
    """The ``CancelScope`` of the running worker thread, if ``run_in_thread`` started it."""
    return _SCOPE.get()


async def run_in_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread(func, *args, **kwargs)``; if the awaiting task is cancelled (or times out), the calls
    that ``func`` made in the worker thread and entered in ``current_scope()`` are stopped.

    The awaiting task gets its ``CancelledError`` at once; the worker thread ends when the stopped call returns
    (for the local backend, at its next batch boundary), and what it raises then is dropped."""
    scope = CancelScope()
    context = contextvars.copy_context()
    context.run(_SCOPE.set, scope)
    try:
        return await asyncio.to_thread(context.run, func, *args, **kwargs)
    except asyncio.CancelledError:
        scope.cancel()
        raise


__all__ = ["CancelScope", "current_scope", "run_in_thread"]
