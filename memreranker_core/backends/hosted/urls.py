"""The service URL, parsed once with the parser the transport uses, and checked for what it will connect to.

Parsers disagree on odd URLs (``http://evil.example\\@127.0.0.1/`` is a loopback URL with user info for ``httpx``
and for ``urllib.parse``, but ``evil.example`` for ``urllib3``). So ``base_url`` is parsed here with ``httpx.URL``,
the parser of the client that sends the requests, and only with it: every later use (the plain-http guard, the
endpoint, the URL shown in ``describe()`` and in errors) reads the host that the connection will really go to.

Rules:

- ``http://`` or ``https://`` with a host; plain ``http://`` only to loopback unless ``allow_insecure_http``;
- no user info (``user:pw@``: it would travel as Basic auth beside the key) and no fragment (it never reaches a
  server, so it is a mistake); both are refused with ``ConfigurationError``;
- a query is kept: the dialect's path goes into the URL's path, before the query
  (``https://host/v1?x=1`` -> ``https://host/v1/rerank?x=1``);
- shown URLs (``public``) have no query, since a query may carry a credential.

Example:
    >>> url = ServiceURL.parse("https://host:8443/v1?tenant=a", allow_insecure_http=False)
    >>> url.with_path(url.path + "/rerank"), url.public
    ('https://host:8443/v1/rerank?tenant=a', 'https://host:8443/v1')
    >>> ServiceURL.parse("https://[::1]:8443/v1", allow_insecure_http=False).netloc
    '[::1]:8443'
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from memreranker_core.errors import ConfigurationError

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_EXAMPLE = "https://memos.memtensor.cn/api/openmem/v1"


@dataclass(frozen=True)
class ServiceURL:
    """A checked ``base_url``, as the transport will read it.

    Attributes:
        scheme: ``"http"`` or ``"https"``.
        host: The host the connection goes to (lower case; IPv6 without brackets).
        port: The explicit port, or ``None``.
        path: The path, without a trailing ``/`` (may be ``""``).
        query: The query string without ``?``, or ``None``.
    """

    scheme: str
    host: str
    port: int | None
    path: str
    query: str | None

    @classmethod
    def parse(cls, value: Any, *, allow_insecure_http: bool) -> ServiceURL:
        """Parse and check ``value``.

        Raises:
            ConfigurationError: Not an http(s) URL with a host, a bad port, user info, a fragment, or plain
                ``http://`` to a host that is not loopback without ``allow_insecure_http``.
        """
        import httpx

        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"base_url must be a URL like {_EXAMPLE!r}, not {value!r}")
        try:
            parts = httpx.URL(value.strip())
        except (httpx.InvalidURL, ValueError, TypeError):
            raise ConfigurationError(
                f"base_url is not a URL the HTTP client can read; write it like {_EXAMPLE!r}"
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.host:
            shown = f"{scheme}://{parts.host or ''}" if scheme else "a URL without a scheme"
            raise ConfigurationError(f"base_url must start with https:// (or http:// to loopback), got {shown!r}")
        if parts.port is not None and not 0 < parts.port < 65536:
            raise ConfigurationError(f"base_url has port {parts.port}, outside 1-65535")
        query = parts.query.decode("ascii") if "?" in value else None
        path = parts.raw_path.decode("ascii").split("?", 1)[0]
        url = cls(scheme, parts.host.lower(), parts.port, path.rstrip("/"), query)
        if parts.userinfo:
            raise ConfigurationError(
                f"base_url {url.public!r} carries user info (user:password@): remove it and pass the key as "
                "api_key=... (or extra headers=...), so that no credential sits in the URL"
            )
        if parts.fragment or "#" in value:
            raise ConfigurationError(
                f"base_url {url.public!r} has a #fragment, which never reaches the service: remove it"
            )
        if scheme == "http" and not allow_insecure_http and not url.is_loopback:
            raise ConfigurationError(
                f"base_url {url.public!r} is plain http:// to a host that is not this machine: memories and the "
                "API key would cross the network unencrypted. Use https://, or pass allow_insecure_http=True if the "
                "network is private (for example a vLLM box on your own LAN)"
            )
        return url

    @property
    def netloc(self) -> str:
        """``host[:port]``, IPv6 in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host + (f":{self.port}" if self.port is not None else "")

    @property
    def public(self) -> str:
        """The URL as shown in ``describe()``, ``repr`` and errors: scheme, host, port and path, no query."""
        return f"{self.scheme}://{self.netloc}{self.path}"

    @property
    def is_loopback(self) -> bool:
        """Whether the host is this machine (``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``)."""
        name = self.host.rstrip(".")
        if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def query_secrets(self) -> tuple[str, ...]:
        """The query as sent, which may carry a credential (``?access_token=...``): what logs must not show."""
        return (self.query,) if self.query else ()

    def with_path(self, path: str) -> str:
        """The full URL for ``path`` on this service, the query kept after it."""
        return f"{self.scheme}://{self.netloc}{path}" + (f"?{self.query}" if self.query is not None else "")
