"""Typed errors raised by memreranker.

Every error says what happened and how to fix it. Errors raised by the hosted backend never contain the API key.

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


class AuthenticationError(HostedBackendError):
    """The API key is missing, invalid or expired."""


class RateLimitError(HostedBackendError):
    """The service throttled the calls and retries did not get through; ``retry_after`` is in seconds, if given."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: int | None) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class QuotaExceededError(HostedBackendError):
    """The account's quota or token allowance is used up."""


class BadRequestError(HostedBackendError):
    """The service refused the request as malformed or too large."""


class ServerError(HostedBackendError):
    """The service failed on its side (5xx or a server error code) and retries did not help."""


class ServiceTimeoutError(HostedBackendError):
    """The service did not answer within the read timeout, on every attempt."""


class ServiceConnectionError(HostedBackendError):
    """The service could not be reached, or dropped the connection, on every attempt."""


class MalformedResponseError(HostedBackendError):
    """The service answered, but its response cannot be trusted: bad JSON, missing, duplicate or stray indices."""


class ResponseTooLargeError(MalformedResponseError):
    """The service's answer, decoded, is larger than ``max_response_bytes`` (a runaway or compressed-bomb body)."""


class CallCancelledError(HostedBackendError):
    """The call was stopped before it finished: the reranker was closed while it was in flight, or its async
    caller was cancelled. Nothing more is sent for it; call again (a closed reranker reopens on the next call)."""


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
    "ServerError",
    "ServiceConnectionError",
    "ServiceTimeoutError",
]
