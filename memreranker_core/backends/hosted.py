"""Hosted backend: placeholder replaced by the hosted-backend work (issue 4)."""

from __future__ import annotations

from typing import Any

from memreranker_core.types import ScoreRequest


class HostedBackend:
    OPTION_NAMES = frozenset(
        {
            "api_key",
            "base_url",
            "api_style",
            "connect_timeout",
            "read_timeout",
            "max_retries",
            "backoff_factor",
            "max_concurrency",
            "max_request_tokens",
            "max_documents_per_request",
            "oversize",
            "allow_insecure_http",
        }
    )

    def __init__(self, model: Any = None, **options: Any) -> None:
        raise NotImplementedError("the hosted backend is being built (issue 4)")

    def score(self, request: ScoreRequest) -> list[float]:
        raise NotImplementedError

    def warm_up(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        return {}
