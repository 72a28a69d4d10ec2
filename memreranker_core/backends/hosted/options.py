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

from dataclasses import dataclass
from typing import Any

from memreranker_core.backends.hosted.dialects import DIALECTS
from memreranker_core.backends.options import (
    BackendOptions,
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
MAX_BACKOFF_FACTOR = 60.0


def _seconds(name: str, value: Any) -> float:
    number = positive_seconds(name, value)
    if number > MAX_SECONDS:
        raise ConfigurationError(f"{name} must be at most {MAX_SECONDS:g} seconds, not {value!r}")
    return number


def _backoff(name: str, value: Any) -> float:
    number = non_negative(name, value)
    if number > MAX_BACKOFF_FACTOR:
        raise ConfigurationError(f"{name} must be at most {MAX_BACKOFF_FACTOR:g} seconds, not {value!r}")
    return number


@dataclass(frozen=True, repr=False)
class HostedOptions(BackendOptions):
    """The hosted backend's options. Every one is optional; ``None`` means the default described.

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
        None, check=text, help="hosted: service URL (default $MEMOS_BASE_URL, else the Memos API)"
    )
    api_style: str = option(DEFAULT_API_STYLE, choices=tuple(DIALECTS), help="hosted: the service's /rerank dialect")
    connect_timeout: float = option(10.0, check=_seconds, cli_type=float, help="hosted: seconds to connect")
    read_timeout: float = option(30.0, check=_seconds, cli_type=float, help="hosted: seconds to wait for an answer")
    max_retries: int = option(
        3, check=whole(0, MAX_RETRIES), cli_type=int, help="hosted: retries on timeouts, 408, 429 and 5xx"
    )
    backoff_factor: float = option(
        0.5, check=_backoff, cli_type=float, help="hosted: base of the exponential backoff, in seconds"
    )
    max_concurrency: int = option(
        4, check=whole(1, MAX_CONCURRENCY), cli_type=int, help="hosted: requests of one call in flight at once"
    )
    max_request_tokens: int = option(
        8000, check=whole(16), cli_type=int, help="hosted: estimated document tokens per request"
    )
    max_documents_per_request: int | None = option(
        None, check=whole(1), cli_type=int, help="hosted: documents per request (default per dialect)"
    )
    oversize: str = option(
        "truncate", choices=("truncate", "error"), help="hosted: a document alone over the limit: truncate or error"
    )
    allow_insecure_http: bool = option(
        False,
        check=check_bool,
        cli_type=bool,
        help="hosted: allow plain http:// to a host that is not loopback (memories and key travel in clear)",
    )
