"""One event loop in one thread per hosted backend, where every request of every call runs, sync or async.

The sync API (``score``) and the async API (``ascore``) share one body of logic, a coroutine: a sync caller
submits it here and blocks its own thread on the result; an async caller submits it here and awaits the result
on its own loop, so neither a thread per call nor the caller's loop is needed for the I/O. The threads the
backend holds do not grow with the number of callers: one, this loop's.

Why a loop of its own rather than the caller's: an ``httpx.AsyncClient`` is bound to the loop that opened its
connections, and callers come from many loops (``asyncio.run`` per request in sync frameworks, notebooks, worker
threads) and from none. Cancelling the awaiting task cancels the call's task here (``asyncio.wrap_future`` passes
the cancellation on), and ``stop()`` cancels every call in flight and closes the loop.

Example:
    >>> import asyncio
    >>> loop = LoopThread("demo")
    >>> async def add(a, b):
    ...     return a + b
    >>> loop.run(add(1, 2))
    3
    >>> asyncio.run(loop.submit(add(3, 4)))
    7
    >>> loop.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How long ``stop()`` waits for the loop to run its clean-up (closing connections) before leaving it to finish.
STOP_WAIT_S = 2.0


class LoopThread:
    """An asyncio event loop running in a daemon thread, started on first use and again after ``stop()``.

    Args:
        name: The thread's name (shown in debuggers and thread dumps).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started if needed."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                ready = threading.Event()
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=_serve, args=(loop, ready), name=self.name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def in_loop(self) -> bool:
        """Whether the calling thread is this loop's own."""
        return self._thread is not None and threading.current_thread() is self._thread

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and block the calling thread until it ends; its result or its error.

        An interruption of the waiting thread (``KeyboardInterrupt``) cancels the coroutine.
        """
        if self.in_loop():
            coroutine.close()
            raise RuntimeError("a sync call cannot be made from the hosted backend's own event loop thread")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop())
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def submit(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and await it from the caller's loop; cancelling the caller cancels it."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop()))

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` in the loop's thread, if the loop is running (from any thread)."""
        with self._lock:
            loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(callback, *args)
            except RuntimeError:  # closed meanwhile
                pass

    def stop(self, cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run ``cleanup()`` on the loop (if given), then stop and close the loop; the next use starts a new one.

        Waits up to ``STOP_WAIT_S`` for the clean-up; a clean-up still running then finishes in the background.
        """
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or loop.is_closed():
            return
        if thread is threading.current_thread():  # stop() from inside the loop: finish after this callback
            loop.call_soon(_finish, loop, cleanup)
            return
        done = asyncio.run_coroutine_threadsafe(_finish_soon(loop, cleanup), loop)
        try:
            done.result(STOP_WAIT_S)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            logger.debug("the hosted backend's loop is still closing its connections; it finishes in the background")
        except Exception as exc:  # a clean-up failure must not stop close()
            logger.debug("closing the hosted backend's connections failed: %s", type(exc).__name__)


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


async def _finish_soon(
    loop: asyncio.AbstractEventLoop, cleanup: Callable[[], Coroutine[Any, Any, None]] | None
) -> None:
    """Cancel every task still on the loop and wait for them, run ``cleanup``, then stop the loop."""
    try:
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        if cleanup is not None:
            await cleanup()
    finally:
        loop.call_soon(loop.stop)


def _finish(loop: asyncio.AbstractEventLoop, cleanup: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
    loop.create_task(_finish_soon(loop, cleanup))


__all__ = ["LoopThread"]
