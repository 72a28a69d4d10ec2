"""Hosted backend: the Memos Rerank API, or any vLLM / Jina / Cohere / TEI ``/rerank`` endpoint.

One call is split into requests that stay under the service's token budget and document cap, sent (several at
once, bounded) over one pooled session with retries, checked index by index, merged back into input order and
returned as log-odds, so the core treats it exactly like the local backend. The pieces live in sibling modules:
``hosted_dialects`` (each service's path, header and body), ``hosted_http`` (session, retries),
``hosted_errors`` (typed errors), ``hosted_chunking`` (token budget) and ``hosted_results`` (index checks).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from memreranker_core.backends.hosted.chunking import estimate_tokens, plan_chunks, truncate_to_tokens
from memreranker_core.backends.hosted.dialects import DIALECTS, Dialect, extract_results
from memreranker_core.backends.hosted.failures import malformed
from memreranker_core.backends.hosted.transport import Transport
from memreranker_core.backends.hosted.responses import ResultsProblem, log_odds, scores_by_position
from memreranker_core.backends.hosted.options import BASE_URL_ENV, DEFAULT_BASE_URL, HostedOptions
from memreranker_core.backends.options import secret_text
from memreranker_core.errors import AuthenticationError, ConfigurationError, InvalidInputError
from memreranker_core.prompt import DEFAULT_INSTRUCTION, hosted_query_text
from memreranker_core.types import ScoreRequest

logger = logging.getLogger(__name__)

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class HostedBackend:
    """Scores through a hosted ``/rerank`` service. Thread-safe: concurrent calls share one pooled session.

    Args:
        model: The service's model name; Memos default ``memos-reranker-4b`` (or ``memos-reranker-0.6b``).
            For other styles it is left out of the request when not given (the server's own model).
        api_key: The key, a ``str`` or a secret object (pydantic ``SecretStr``, Haystack ``Secret``). For
            ``api_style="memos"`` the default is the ``MEMOS_API_KEY`` variable, read at call time. The Memos key
            is never sent to another style's service.
        base_url: Default ``MEMOS_BASE_URL``, else ``https://memos.memtensor.cn/api/openmem/v1``. Plain
            ``http://`` is allowed only to loopback unless ``allow_insecure_http=True``.
        api_style: ``"memos"`` (default), ``"vllm"``, ``"jina"``, ``"cohere"`` or ``"tei"``.
        connect_timeout: Seconds to connect (default 10).
        read_timeout: Seconds to wait for an answer (default 30).
        max_retries: Retries after the first attempt (default 3), on connection errors, timeouts, 408, 429, 5xx
            and rate-limit or server body codes; never on other 4xx.
        backoff_factor: Base of the exponential backoff in seconds (default 0.5: waits about 0.5, 1, 2 s).
        max_concurrency: Requests of one call in flight at once (default 4).
        max_request_tokens: Estimated document tokens per request (default 8000: the Memos limit is about 8k).
        max_documents_per_request: Documents per request (default 100; Cohere 1000, TEI 32).
        oversize: A document alone over ``max_request_tokens``: ``"truncate"`` its tail with a warning
            (default) or ``"error"``.
        allow_insecure_http: Allow ``http://`` to a host that is not loopback.

    Example:
        >>> backend = HostedBackend(api_key="sk-...", base_url="https://memos.memtensor.cn/api/openmem/v1")
        >>> backend.describe()["api_style"]
        'memos'
        >>> "sk-" in repr(backend)
        False
    """

    def __init__(self, model: Any = None, *, options: HostedOptions | None = None, **given: Any) -> None:
        if options is not None and given:
            raise ConfigurationError("pass either options= or option keywords, not both")
        self.options = options if options is not None else HostedOptions.from_given(given)
        self._dialect: Dialect = DIALECTS[self.options.api_style]
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ConfigurationError(
                f"model must be the service's model name (e.g. 'memos-reranker-4b'), not {type(model).__name__}"
            )
        self.model: str | None = model if model is not None else self._dialect.default_model
        self._api_key = self.options.api_key
        self.allow_insecure_http = self.options.allow_insecure_http
        self.base_url = _check_base_url(
            self.options.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL, self.allow_insecure_http
        )
        self.connect_timeout = self.options.connect_timeout
        self.read_timeout = self.options.read_timeout
        self.max_retries = self.options.max_retries
        self.backoff_factor = self.options.backoff_factor
        self.max_concurrency = self.options.max_concurrency
        self.max_request_tokens = self.options.max_request_tokens
        self.max_documents_per_request = self.options.max_documents_per_request or self._dialect.max_documents
        self.oversize = self.options.oversize
        self.url = self._dialect.url(self.base_url)
        self._where = _public_url(self.url)
        self._transport = Transport(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_retries=self.max_retries,
            backoff_factor=self.backoff_factor,
            pool_size=max(10, 2 * self.max_concurrency),
        )
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    # ----------------------------------------------------------------- protocol
    @property
    def api_style(self) -> str:
        return self._dialect.name

    def score(self, request: ScoreRequest) -> list[float]:
        """Log-odds per document of ``request``, in input order.

        Raises:
            AuthenticationError: No key (Memos: set ``MEMOS_API_KEY`` or pass ``api_key``) or a refused key.
            InvalidInputError: A document is over ``max_request_tokens`` and ``oversize="error"``.
            HostedBackendError: A subclass naming what the service or the network did wrong.
        """
        documents = list(request.documents)
        if not documents:
            return []
        key = self._resolve_key()
        query = hosted_query_text(request.query, request.instruction or DEFAULT_INSTRUCTION, request.context)
        documents = self._fit(documents)
        costs = [estimate_tokens(text) for text in documents]
        chunks = plan_chunks(costs, self.max_request_tokens, self.max_documents_per_request)
        headers = self._dialect.headers(key)
        if len(chunks) == 1 or self.max_concurrency == 1:
            parts = [self._score_chunk(query, documents, chunk, headers, key) for chunk in chunks]
        else:
            parts = self._score_concurrently(query, documents, chunks, headers, key)
        logits: list[float | None] = [None] * len(documents)
        for chunk, values in zip(chunks, parts, strict=True):
            for position, value in zip(chunk, values, strict=True):
                logits[position] = value
        if any(value is None for value in logits):  # cannot happen: each chunk was checked whole
            raise malformed("a document was left unscored after the merge").to_error(self._where, 1, key)
        return [float(value) for value in logits]  # type: ignore[arg-type]

    def warm_up(self) -> None:
        """Check that a key is available (when the service needs one) and open the pooled session."""
        self._resolve_key()
        self._transport.session()

    def close(self) -> None:
        """Close the session's connections and the chunk threads; a later call opens them again."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        self._transport.close()

    def describe(self) -> dict[str, Any]:
        """Every setting in force; the key appears only as whether one is set (here or in the environment)."""
        return {
            **self.options.describe(),
            "model": self.model,
            "base_url": _public_url(self.base_url),
            "api_key_set": self._key_value() is not None,
            "max_documents_per_request": self.max_documents_per_request,
        }

    def stats(self) -> dict[str, int]:
        """Counts since creation: HTTP requests sent, retries made, requests that failed after retries."""
        return self._transport.stats()

    def __repr__(self) -> str:
        where = _public_url(self.base_url)
        return f"HostedBackend(model={self.model!r}, base_url={where!r}, api_style={self.api_style!r})"

    # ----------------------------------------------------------------- internals
    def _key_value(self) -> str | None:
        key = secret_text(self._api_key)
        if key is None and self._dialect.key_env:
            key = os.environ.get(self._dialect.key_env) or None
        return key.strip() if key is not None and key.strip() else None

    def _resolve_key(self) -> str | None:
        key = self._key_value()
        if key is None and self._dialect.key_required:
            how = (
                f"set the {self._dialect.key_env} environment variable or pass api_key=..."
                if self._dialect.key_env
                else "pass api_key=... (the key of that service)"
            )
            raise AuthenticationError(f"no API key for {self._dialect.service} at {self._where}: {how}")
        if key is not None and any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in key):
            raise AuthenticationError(
                "the API key contains spaces or control characters; copy it again without spaces or line breaks"
            )
        return key

    def _fit(self, documents: list[str]) -> list[str]:
        """Documents alone over the token budget: truncated from the tail (one warning) or refused."""
        limit = self.max_request_tokens
        over = [(position, cost) for position, text in enumerate(documents) if (cost := estimate_tokens(text)) > limit]
        if not over:
            return documents
        positions = [position for position, _cost in over]
        if self.oversize == "error":
            raise InvalidInputError(
                f"document(s) {positions[:10]} are about {max(cost for _p, cost in over)} tokens, over the "
                f"service's per-request limit (max_request_tokens={limit}); shorten or split them, or pass "
                "oversize='truncate' to cut their tails"
            )
        fitted = list(documents)
        for position in positions:
            fitted[position] = truncate_to_tokens(documents[position], limit)
        logger.warning(
            "truncated %d document(s) at position(s) %s from the tail to about %d tokens, the per-request limit "
            "(max_request_tokens); split long memories before reranking, or pass oversize='error' to refuse them",
            len(positions),
            positions[:10],
            limit,
        )
        return fitted

    def _score_chunk(
        self, query: str, documents: Sequence[str], chunk: list[int], headers: dict[str, str], key: str | None
    ) -> list[float]:
        body = self._dialect.body(self.model, query, [documents[position] for position in chunk])
        payload = self._transport.post_json(self.url, body, headers, where=self._where, secret=key)
        results = extract_results(payload)
        try:
            if isinstance(results, str):
                raise ResultsProblem(results)
            probabilities = scores_by_position(results, chunk)
        except ResultsProblem as problem:
            raise malformed(str(problem)).to_error(self._where, 1, key) from None
        return [log_odds(probability) for probability in probabilities]

    def _score_concurrently(
        self, query: str, documents: Sequence[str], chunks: list[list[int]], headers: dict[str, str], key: str | None
    ) -> list[list[float]]:
        executor = self._chunk_executor()
        futures: list[Future[list[float]]] = [
            executor.submit(self._score_chunk, query, documents, chunk, headers, key) for chunk in chunks
        ]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [future for future in futures if future in done and future.exception() is not None]
        if failed:
            for future in pending:
                future.cancel()
            raise failed[0].exception()  # type: ignore[misc]
        return [future.result() for future in futures]

    def _chunk_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.max_concurrency, thread_name_prefix="memreranker-hosted"
                )
            return self._executor


# ----------------------------------------------------------------- option checks
def _check_base_url(value: Any, allow_insecure_http: bool) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"base_url must be a URL like {DEFAULT_BASE_URL!r}, not {value!r}")
    url = value.strip()
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError("base_url has an invalid port; write it as https://host:port/path") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url must start with https:// (or http:// to loopback), got {_public_url(url)!r}"
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"base_url {_public_url(url)!r} is plain http:// to a host that is not this machine: memories and the "
            "API key would cross the network unencrypted. Use https://, or pass allow_insecure_http=True if the "
            "network is private (for example a vLLM box on your own LAN)"
        )
    return url


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _public_url(url: str) -> str:
    """``url`` without user info, query or fragment (which may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


__all__ = ["DEFAULT_BASE_URL", "HostedBackend"]
