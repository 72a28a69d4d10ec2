"""Run a hosted test on both paths: ``score``/``rerank`` (sync) and ``ascore``/``arerank`` (async).

``on_path(rr, "async")`` wraps a ``MemReranker`` so that its ``score`` and ``rerank`` go through ``ascore`` and
``arerank`` (each on a fresh event loop, as a sync test can await them): a test written against the sync API then
proves the same guarantee on the async path. Everything else is the reranker's own.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from memreranker_core import MemReranker

PATHS = ("sync", "async")


class AsyncPath:
    """A ``MemReranker`` whose ``score``/``rerank`` run its ``ascore``/``arerank``."""

    def __init__(self, reranker: MemReranker) -> None:
        self._reranker = reranker

    def score(self, *args: Any, **kwargs: Any) -> list[float]:
        return _run(self._reranker.ascore, *args, **kwargs)

    def rerank(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self._reranker.arerank, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reranker, name)

    def __enter__(self) -> AsyncPath:
        self._reranker.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._reranker.__exit__(*exc_info)


def _run(method: Any, *args: Any, **kwargs: Any) -> Any:
    """``asyncio.run`` of ``method(...)``; from inside a running loop (an async test), on a thread of its own."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is None:  # outside the except block, so that no error the call raises carries this one
        return asyncio.run(method(*args, **kwargs))
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(method(*args, **kwargs))).result()


def on_path(reranker: MemReranker, path: str) -> Any:
    """``reranker`` itself for ``"sync"``, wrapped in ``AsyncPath`` for ``"async"``."""
    return AsyncPath(reranker) if path == "async" else reranker
