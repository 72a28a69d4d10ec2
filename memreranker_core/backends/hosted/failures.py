"""What a failed hosted call means: HTTP statuses and service body codes mapped to typed errors and retry decisions.

Every message says what happened and what to do. Messages quote the service's own words, which may echo the API
key (or an extra header's value) back, in any form the request can yield (escaped, percent-encoded, re-cased,
base64, only the credential after ``Bearer``), so those words go through ``service_words`` first: redaction lives
in ``memreranker_core.backends.hosted.redaction`` (see its docstring), and its names stay importable from here.

Example:
    >>> failure = classify(status=200, code=40132, detail="API key is invalid or expired")
    >>> failure.error_class.__name__, failure.retryable
    ('AuthenticationError', False)
    >>> service_words("bad key sk-<b>SECRET</b>-123!", ("sk-SECRET-123",), limit=40)
    'bad key ***!'
"""

from __future__ import annotations

from dataclasses import dataclass

from memreranker_core.backends.hosted.redaction import (  # noqa: F401 - kept importable from here
    MIN_REDACTABLE,
    SAID_LIMIT,
    SHORT_SECRET_NOTE,
    Secrets,
    _each,
    quote,
    redact,
    service_words,
)
from memreranker_core.errors import (
    AuthenticationError,
    BadRequestError,
    HostedBackendError,
    MalformedResponseError,
    QuotaExceededError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    ServiceConnectionError,
    ServiceTimeoutError,
)

#: HTTP statuses worth another attempt: the request may succeed unchanged.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

_LIMITS_HINT = "lower max_request_tokens or max_documents_per_request so each request is smaller"
_KEY_HINT = "check the key (MEMOS_API_KEY or api_key=...) and that it matches the service at base_url"

#: Memos body codes: (error class, retryable, what it means, what to do).
MEMOS_CODES: dict[int, tuple[type[HostedBackendError], bool, str, str]] = {
    40000: (BadRequestError, False, "a request parameter was refused", "check model and api_style, or " + _LIMITS_HINT),
    40002: (BadRequestError, False, "the query was empty", "pass a non-empty query"),
    40003: (BadRequestError, False, "the documents were empty", "pass at least one non-empty document"),
    40100: (AuthenticationError, False, "no API key reached the service", _KEY_HINT),
    40130: (AuthenticationError, False, "no API key reached the service", _KEY_HINT),
    40132: (AuthenticationError, False, "the API key is invalid or expired", _KEY_HINT),
    40300: (RateLimitError, True, "the account's call rate limit was hit", "lower max_concurrency or call less often"),
    40301: (RateLimitError, True, "the account's token rate limit was hit", "send fewer tokens per minute"),
    40302: (RateLimitError, True, "the account's token rate limit was hit", "send fewer tokens per minute"),
    40304: (QuotaExceededError, False, "the account's quota is used up", "top up the account or wait for the reset"),
    40305: (BadRequestError, False, "the input is over the per-call token cap", _LIMITS_HINT),
    50000: (ServerError, True, "the service failed on its side", "try again later"),
    50002: (ServerError, True, "the model service is unavailable", "try again later"),
}


@dataclass(frozen=True)
class Failure:
    """One failed attempt: the error it becomes, whether to try again, and the words for the message."""

    error_class: type[HostedBackendError]
    retryable: bool
    what: str
    todo: str
    status_code: int | None = None
    code: int | None = None
    retry_after: float | None = None

    def to_error(self, where: str, attempts: int, secrets: Secrets = ()) -> HostedBackendError:
        """The typed error for this failure, after ``attempts`` attempts at ``where`` (a key-free URL)."""
        tried = f" (the last of {attempts} attempts)" if attempts > 1 else ""
        message = redact(f"{self.what} at {where}{tried}: {self.todo}", secrets)
        if self.error_class is RateLimitError:
            return RateLimitError(message, retry_after=self.retry_after, status_code=self.status_code, code=self.code)
        return self.error_class(message, status_code=self.status_code, code=self.code)


def classify(*, status: int, code: int | None, detail: str, retry_after: float | None = None) -> Failure:
    """Map an HTTP status and an optional service body code to a ``Failure``. ``detail`` is what ``quote`` made
    of the service's words (already safe to show).

    A known Memos body code decides the error type (it is usually more precise than the status), except with a
    retryable status (408, 429, 5xx) or a generic 40000 beside a specific status (404, 413, 422). Unknown codes
    fall back on the status, or on the code's own HTTP-like prefix when the status is 200.
    """
    said = "" if not detail else f" ({detail})" if detail == SHORT_SECRET_NOTE else f" (service said: {detail})"
    generic = code == 40000 and status not in (200, 400)  # "bad parameter" says less than 404, 413 or 422
    if code is not None and code in MEMOS_CODES and status not in RETRY_STATUSES and not generic:
        error_class, retryable, what, todo = MEMOS_CODES[code]
        label = f"HTTP {status}, code {code}" if status != 200 else f"code {code}"
        return Failure(
            error_class,
            retryable or status in RETRY_STATUSES,
            f"{what} [{label}]{said}",
            todo,
            status,
            code,
            retry_after,
        )
    effective = status
    if status < 400 and code is not None:
        effective = code // 100 if 40000 <= code < 60000 else 500
    label = f"HTTP {status}" + (f", code {code}" if code is not None else "")
    failure = _by_status(effective, label, said)
    return Failure(failure.error_class, failure.retryable, failure.what, failure.todo, status, code, retry_after)


def _by_status(status: int, label: str, said: str) -> Failure:
    if status in (401, 403):
        return Failure(AuthenticationError, False, f"the service refused the API key [{label}]{said}", _KEY_HINT)
    if status == 402:
        return Failure(
            QuotaExceededError, False, f"the account has no quota or balance left [{label}]{said}", "top it up"
        )
    if status == 404:
        return Failure(
            BadRequestError,
            False,
            f"no rerank endpoint here [{label}]{said}",
            "check base_url and api_style ('memos', 'vllm', 'jina', 'cohere' or 'tei')",
        )
    if status == 408:
        return Failure(ServiceTimeoutError, True, f"the service timed out the request [{label}]{said}", _LIMITS_HINT)
    if status in (413, 422):
        return Failure(BadRequestError, False, f"the service refused the request's size [{label}]{said}", _LIMITS_HINT)
    if status == 429:
        return Failure(
            RateLimitError,
            True,
            f"the service is throttling calls [{label}]{said}",
            "lower max_concurrency, call less often, or retry later",
        )
    if status >= 500:
        return Failure(
            ServerError,
            True,
            f"the service failed on its side [{label}]{said}",
            "try again later or check the service's health",
        )
    if 300 <= status < 400:
        return Failure(
            BadRequestError,
            False,
            f"the service redirected the request [{label}]{said}",
            "set base_url to the final URL (redirects are not followed, so the key is never forwarded)",
        )
    return Failure(
        BadRequestError,
        False,
        f"the service refused the request [{label}]{said}",
        "check model, api_style and the documents, or " + _LIMITS_HINT,
    )


#: The time limits of a hosted call: option -> (what happened, with the limit in seconds; worth another attempt).
TIME_LIMITS = {
    "read_timeout": ("no answer within read_timeout={:g}s", True),
    "attempt_timeout": ("the answer did not finish within attempt_timeout={:g}s", True),
    "call_timeout": ("the call did not finish within call_timeout={:g}s (retries and chunks included)", False),
}


def time_limit_failure(option: str, seconds: float) -> Failure:
    """The service did not answer in time: ``option`` (one of ``TIME_LIMITS``) of ``seconds`` ran out.

    ``read_timeout`` (no bytes for that long) and ``attempt_timeout`` (one attempt in whole: a slow or trickling
    answer) are retried; ``call_timeout`` (the whole call) never is.

    Example:
        >>> time_limit_failure("call_timeout", 600).retryable
        False
    """
    what, retryable = TIME_LIMITS[option]
    return Failure(
        ServiceTimeoutError,
        retryable,
        what.format(seconds),
        f"raise {option}, {_LIMITS_HINT}, or check the service's load",
    )


def connection_failure(detail: str, retryable: bool) -> Failure:
    """The service could not be reached, or dropped the connection."""
    return Failure(
        ServiceConnectionError,
        retryable,
        f"the connection failed ({detail})",
        "check base_url, the network and that the service is up",
    )


def malformed(detail: str) -> Failure:
    """The answer cannot be trusted; no score from it is used."""
    return Failure(
        MalformedResponseError,
        False,
        f"the service's answer cannot be trusted: {detail}; no score from it was used",
        "check that api_style matches the service, or report it to the service's operator",
    )


def too_large(limit: int) -> Failure:
    """The decoded answer is over ``max_response_bytes``; it was not read further."""
    return Failure(
        ResponseTooLargeError,
        False,
        f"the service's answer is larger than max_response_bytes={limit} once decoded; it was not read further "
        "and no score from it was used",
        "raise max_response_bytes if the service really sends answers that large, or check the service",
    )
