"""An attempt's handle on its socket, so that a deadline or a stop can end it from another thread.

``requests`` offers no way to bound a whole exchange: its read timeout restarts with every byte received. So each
attempt runs inside an ``Exchange``; the session's connections (from ``watched_adapter_class``) attach to the
exchange of the thread that sends on them, and ``Exchange.abort`` shuts that socket down (``SHUT_RDWR``), which
wakes a blocked read at once: the transport's watchdog calls it at the attempt's deadline, and a closed or cancelled
call calls it too. A whole answer already read is never thrown away by a late abort.

Example:
    >>> exchange = Exchange()
    >>> with exchange.running():
    ...     exchange.abort("deadline")
    >>> exchange.reason
    'deadline'
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_CURRENT = threading.local()  # the exchange the current thread is running, for its connection to attach to


class Exchange:
    """One attempt's connection, so that a watchdog or a stop can shut its socket down from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None
        self._done = False
        self.reason: str | None = None

    def attach(self, connection: Any) -> None:
        with self._lock:
            if self._done:
                return
            self._connection = connection
            connection.memreranker_exchange = self
            if self.reason is not None:
                shut_down(connection)

    def abort(self, reason: str) -> None:
        with self._lock:
            if self._done or self.reason is not None:
                return
            self.reason = reason
            connection = self._connection
            if connection is not None and getattr(connection, "memreranker_exchange", None) is self:
                shut_down(connection)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._connection = None

    @contextmanager
    def running(self) -> Iterator[Exchange]:
        """Make this the current thread's exchange while the block runs; finished afterwards."""
        _CURRENT.exchange = self
        try:
            yield self
        finally:
            _CURRENT.exchange = None
            self.finish()


def shut_down(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@functools.lru_cache(maxsize=1)
def watched_adapter_class() -> type:
    """An ``HTTPAdapter`` whose connections attach to the running exchange (the watchdog's handle on the socket)."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.poolmanager import ProxyManager

    class _Watched:
        def request(self, *args: Any, **kwargs: Any) -> Any:
            exchange = getattr(_CURRENT, "exchange", None)
            if exchange is not None:
                exchange.attach(self)
            return super().request(*args, **kwargs)  # type: ignore[misc]

    class WatchedHTTPConnection(_Watched, HTTPConnection):
        pass

    class WatchedHTTPSConnection(_Watched, HTTPSConnection):
        pass

    class WatchedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = WatchedHTTPConnection

    class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPSConnection

    pools = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}

    class WatchedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            if isinstance(manager, ProxyManager):  # SOCKS managers keep their own pools (no watchdog handle)
                manager.pool_classes_by_scheme = pools
            return manager

    return WatchedAdapter
