"""Typed errors raised by memreranker.

Every error says what happened and how to fix it. Errors raised by the hosted backend never contain the API key.

Which errors are worth retrying: those that subclass ``RetryableError`` (``RateLimitError``, ``ServerError``,
``ServiceTimeoutError``, ``ServiceConnectionError``): the same call may succeed later. The hosted backend has
already retried them within the call (``max_retries``), except a ``call_timeout``. Every other error, a cancelled
call (``CallCancelledError``) included, fails the same way again; a generic retry wrapper should retry only
``RetryableError``.

Example:
    >>> from memreranker_core import MemReranker, errors
    >>> try:
    ...     MemReranker(backend="gpu-cluster")
    ... except errors.ConfigurationError as exc:
    ...     print(type(exc).__name__)
    ConfigurationError
"""

from __future__ import annotations


class MemRerankerError(Exception):
    """Base class of every error raised by memreranker."""


class ConfigurationError(MemRerankerError, ValueError):
    """An option is unknown, has the wrong type, or holds a value that cannot work."""


class InvalidInputError(MemRerankerError, ValueError, TypeError):
    """A query, document, context turn or per-call option is of the wrong type or value.

    It subclasses both ``ValueError`` and ``TypeError`` so that callers who catch the built-in one they expect
    keep working.
    """


class MissingDependencyError(MemRerankerError, ImportError):
    """An optional dependency is not installed; the message names the exact ``pip install`` command."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the package {package!r}, which is not installed. Install it from your clone of "
            f'memreranker with: pip install -e ".[{extra}]" (or pip install {package})'
        )


class ModelLoadError(MemRerankerError):
    """The local model could not be loaded (not cached and offline, a bad path, a broken checkpoint)."""


class BackendError(MemRerankerError):
    """A backend failed while scoring. Subclasses say why."""


# Hosted backend errors. ``status_code`` is the HTTP status when there was one, ``code`` the service's body code.
class HostedBackendError(BackendError):
    """The hosted rerank service failed. ``status_code`` and ``code`` hold what the service said, if anything."""

    def __init__(self, message: str, *, status_code: int | None = None, code: int | None = None) -> None:
        self.status_code = status_code
        self.code = code
        super().__init__(message)


class RetryableError(HostedBackendError):
    """A hosted failure that may pass if the same call is made again later: the service was busy, failing, slow or
    unreachable. Retry on this class, never on ``HostedBackendError`` (which includes a cancelled call).

    Example:
        >>> issubclass(ServerError, RetryableError), issubclass(CallCancelledError, RetryableError)
        (True, False)
    """


class AuthenticationError(HostedBackendError):
    """The API key is missing, invalid or expired."""


class RateLimitError(RetryableError):
    """The service throttled the calls and retries did not get through; ``retry_after`` is in seconds, if given."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: int | None) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class QuotaExceededError(HostedBackendError):
    """The account's quota or token allowance is used up."""


class BadRequestError(HostedBackendError):
    """The service refused the request as malformed or too large."""


class ServerError(RetryableError):
    """The service failed on its side (5xx or a server error code) and retries did not help."""


class ServiceTimeoutError(RetryableError):
    """The service did not answer in time: no bytes within ``read_timeout`` or no whole answer within
    ``attempt_timeout`` on every attempt, an HTTP 408 on every attempt, or the whole call past ``call_timeout``
    (never retried within the call)."""


class ServiceConnectionError(RetryableError):
    """The service could not be reached, or dropped the connection, on every attempt."""


class MalformedResponseError(HostedBackendError):
    """The service answered, but its response cannot be trusted: bad JSON, missing, duplicate or stray indices."""


class ResponseTooLargeError(MalformedResponseError):
    """The service's answer, decoded, is larger than ``max_response_bytes`` (a runaway or compressed-bomb body)."""


class CallCancelledError(BackendError):
    """The call was stopped before it finished: the reranker (local or hosted) was closed while it was in flight,
    or it was stopped while waiting for its turn. Nothing more is sent or run for it; call again (a closed reranker
    reopens on the next call). Not a ``RetryableError``: the stop was asked for, so a retry wrapper must not undo
    it."""


__all__ = [
    "AuthenticationError",
    "BackendError",
    "BadRequestError",
    "CallCancelledError",
    "ConfigurationError",
    "HostedBackendError",
    "InvalidInputError",
    "MalformedResponseError",
    "MemRerankerError",
    "MissingDependencyError",
    "ModelLoadError",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseTooLargeError",
    "RetryableError",
    "ServerError",
    "ServiceConnectionError",
    "ServiceTimeoutError",
]
