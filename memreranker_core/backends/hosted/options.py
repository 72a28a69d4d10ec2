"""``HostedOptions``: every setting of the hosted backend, declared once (see ``memreranker_core.backends.options``).

Adding an option is one field here plus its use; validation, ``describe()``, ``settings()`` (serialization), the
command line's flags and the adapters' ``reranker_options`` follow from the field.

Example:
    >>> options = HostedOptions.from_given({"api_key": "sk-123", "read_timeout": 10})
    >>> options.settings()  # what the user gave, never the key
    {'read_timeout': 10.0}
    >>> options.describe()["api_key_set"], options.describe()["max_retries"]
    (True, 3)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memreranker_core.backends.hosted.dialects import DIALECTS
from memreranker_core.backends.options import (
    BackendOptions,
    at_most,
    check_bool,
    check_secret,
    non_negative,
    option,
    positive_seconds,
    text,
    whole,
)
from memreranker_core.errors import ConfigurationError

BASE_URL_ENV = "MEMOS_BASE_URL"
DEFAULT_BASE_URL = "https://memos.memtensor.cn/api/openmem/v1"
DEFAULT_API_STYLE = "memos"
#: Upper bounds that catch a typo (``read_timeout=30000``) before it holds a call for hours.
MAX_SECONDS = 3600.0
MAX_RETRIES = 20
MAX_CONCURRENCY = 64
#: Enough for 100 concurrent single-request callers without a queue; at most this many connections are kept open.
DEFAULT_MAX_CONNECTIONS = 128
MAX_CONNECTIONS = 4096
MAX_BACKOFF_FACTOR = 60.0
#: The exact mode's default ``max_length``: the local backend's, so both cut a long document at the same token.
EXACT_MAX_LENGTH = 8192
DEFAULT_CALL_TIMEOUT = 600.0
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
#: Headers the client sets itself: ``headers=`` may not replace them (the key goes in ``api_key``).
RESERVED_HEADERS = frozenset({"authorization", "content-type", "content-length", "host", "transfer-encoding"})
PROXY_SCHEMES = frozenset({"http", "https", "all", "no_proxy"})


_seconds = at_most(positive_seconds, MAX_SECONDS, " seconds")
_backoff = at_most(non_negative, MAX_BACKOFF_FACTOR, " seconds")


def _pairs(name: str, value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigurationError(f"{name} must be a dict of strings, {what}, not {type(value).__name__}")
    return tuple(sorted(value.items()))


def _headers(name: str, value: Any) -> tuple[tuple[str, str], ...]:
    """Extra headers as sorted ``(name, value)`` pairs: printable Latin-1, no line breaks, none the client sets."""
    pairs = _pairs(name, value, "like {'X-Tenant': 'acme'}")
    for header, content in pairs:
        if not header or any(char in header for char in ":\r\n ") or not header.isascii():
            raise ConfigurationError(f"{name}: {header!r} is not a header name (ASCII, no spaces or colons)")
        if header.lower() in RESERVED_HEADERS:
            raise ConfigurationError(
                f"{name}: {header!r} is set by the client itself; pass the key as api_key=... instead"
            )
        if any(char in content for char in "\r\n\0") or any(ord(char) > 255 for char in content):
            raise ConfigurationError(  # the value is not echoed: it may be a credential
                f"{name}: the value of {header!r} must be one line of Latin-1 text (no line breaks or other scripts)"
            )
    return pairs


def _proxies(name: str, value: Any) -> tuple[tuple[str, str], ...]:
    """Proxies as sorted ``(scheme, url)`` pairs, as ``requests`` takes them."""
    pairs = _pairs(name, value, "like {'https': 'http://proxy:3128'}")
    unknown = sorted(scheme for scheme, _url in pairs if scheme not in PROXY_SCHEMES and "://" not in scheme)
    if unknown:
        raise ConfigurationError(f"{name}: unknown key(s) {unknown}; use 'http', 'https', 'all' or 'no_proxy'")
    return pairs


def _verify(name: str, value: Any) -> bool | str:
    """``True``, ``False`` or the path of a CA bundle file or directory that exists."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() and os.path.exists(value.strip()):
        return value.strip()
    raise ConfigurationError(
        f"{name} must be True, False or the path of a CA bundle file or directory that exists, not {value!r}"
    )


@dataclass(frozen=True, repr=False)
class HostedOptions(BackendOptions):
    """The hosted backend's options. Every one is optional; ``None`` means the default described.

    Time limits, from the innermost: ``connect_timeout`` bounds establishing a connection; ``read_timeout`` bounds
    each wait for the next bytes of the answer; ``attempt_timeout`` bounds one attempt in whole, from connecting
    to the answer's last byte (a server that trickles its answer a byte at a time is cut off there: the socket is
    shut down and the attempt counts as a timeout, retried like one); ``call_timeout`` bounds one ``score`` call
    in whole, every chunk, attempt and backoff wait included (never retried: it raises ``ServiceTimeoutError``).
    Each attempt ends by the call's deadline at the latest.

    Secrets: ``api_key``, ``headers`` and ``proxies`` (a proxy URL may carry a password) are never shown or
    serialized; ``describe()`` says only whether each is set. The key and the header values are removed from every
    error message and log line, also where a service echoes them back; a key shorter than 8 characters cannot be
    searched for without blanking ordinary words, so while one is in use messages leave out the service's own
    words (and say so).

    Example:
        >>> HostedOptions.from_given({"api_style": "VLLM"}).api_style
        'vllm'
    """

    BACKEND = "hosted"

    api_key: Any = option(
        None,
        check=check_secret,
        secret=True,
        help="hosted: API key (prefer the MEMOS_API_KEY variable: arguments show in `ps`)",
    )
    base_url: str | None = option(
        None,
        check=text,
        show=lambda url: url.split("?", 1)[0] + ("?***" if "?" in url else ""),
        help="hosted: service URL (default $MEMOS_BASE_URL, else the Memos API); a query is sent, never shown",
    )
    api_style: str = option(DEFAULT_API_STYLE, choices=tuple(DIALECTS), help="hosted: the service's /rerank dialect")
    connect_timeout: float = option(10.0, check=_seconds, cli_type=float, help="hosted: seconds to connect")
    read_timeout: float = option(
        30.0, check=_seconds, cli_type=float, help="hosted: seconds to wait for the next bytes of an answer"
    )
    attempt_timeout: float | None = option(
        None,
        check=_seconds,
        cli_type=float,
        help="hosted: seconds one attempt may take in whole, connect to last byte (default connect + 2 x read)",
    )
    call_timeout: float = option(
        DEFAULT_CALL_TIMEOUT,
        check=_seconds,
        cli_type=float,
        help="hosted: seconds one call may take in whole, every chunk, retry and wait included",
    )
    max_response_bytes: int = option(
        DEFAULT_MAX_RESPONSE_BYTES,
        check=whole(1024, 2**31),
        cli_type=int,
        help="hosted: largest answer accepted, in bytes once decoded (default 32 MiB)",
    )
    max_retries: int = option(
        3, check=whole(0, MAX_RETRIES), cli_type=int, help="hosted: retries on timeouts, 408, 429 and 5xx"
    )
    backoff_factor: float = option(
        0.5, check=_backoff, cli_type=float, help="hosted: base of the exponential backoff, in seconds"
    )
    max_concurrency: int = option(
        4, check=whole(1, MAX_CONCURRENCY), cli_type=int, help="hosted: requests of one call in flight at once"
    )
    max_connections: int = option(
        DEFAULT_MAX_CONNECTIONS,
        check=whole(1, MAX_CONNECTIONS),
        cli_type=int,
        help="hosted: requests of the whole reranker in flight at once, every call and caller together "
        "(connections kept open)",
    )
    max_request_tokens: int = option(
        8000,
        check=whole(16),
        cli_type=int,
        help="hosted: document tokens per request (estimated without tokenizer; whole prompts in the exact mode)",
    )
    max_documents_per_request: int | None = option(
        None, check=whole(1), cli_type=int, help="hosted: documents per request (default per dialect)"
    )
    oversize: str = option(
        "truncate", choices=("truncate", "error"), help="hosted: a document alone over the limit: truncate or error"
    )
    tokenizer: str | None = option(
        None,
        check=text,
        help="hosted: the served model's tokenizer (tokenizer.json, model folder or hub id): exact token counts; "
        "with api_style vllm, the exact mode (token ids to /classify)",
    )
    max_length: int = option(
        EXACT_MAX_LENGTH,
        check=whole(16),
        cli_type=int,
        help="hosted exact mode: most tokens per prompt (at most the server's --max-model-len); a tail is cut",
    )
    allow_insecure_http: bool = option(
        False,
        check=check_bool,
        cli_type=bool,
        help="hosted: allow plain http:// to a host that is not loopback (memories and key travel in clear)",
    )
    verify: bool | str = option(
        True,
        check=_verify,
        help="hosted: TLS certificate check: a CA bundle path (or False to turn it off; the key is then exposed)",
    )
    proxies: Any = option(
        None,
        check=_proxies,
        secret=True,
        cli=False,
        help="hosted: proxies, {'https': 'http://proxy:3128'} (default: the environment's, never for loopback)",
    )
    headers: Any = option(
        None,
        check=_headers,
        secret=True,
        cli=False,
        help="hosted: extra request headers, {'X-Tenant': 'acme'} (secret: never shown or serialized)",
    )

    @property
    def attempt_seconds(self) -> float:
        """``attempt_timeout``, or its default ``connect_timeout + 2 * read_timeout``."""
        if self.attempt_timeout is not None:
            return self.attempt_timeout
        return self.connect_timeout + 2 * self.read_timeout
