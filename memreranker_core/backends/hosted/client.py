"""Hosted backend: the Memos Rerank API, or any vLLM / Jina / Cohere / TEI ``/rerank`` endpoint.

One call is split into requests that stay under the service's token budget and document cap, sent (several at
once, bounded) over one pooled session with retries, checked index by index, merged back into input order and
returned as log-odds, so the core treats it exactly like the local backend. The pieces live in sibling modules:
``urls`` (the parsed ``base_url``), ``dialects`` (each service's path, header and body), ``transport`` (session,
limits, retries), ``responses`` (reading an answer), ``failures`` (typed errors, redaction), ``calls`` (deadline
and stop signal of a call in flight) and ``chunking`` (token budget).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from memreranker_core.backends.hosted.calls import Call
from memreranker_core.backends.hosted.chunking import EstimateCounter, TokenCounter, TokenizerCounter, plan_chunks
from memreranker_core.backends.hosted.dialects import DIALECTS, Dialect
from memreranker_core.backends.hosted.exact import ExactMode
from memreranker_core.backends.hosted.exact import merge as merge_chunks
from memreranker_core.backends.hosted.failures import Failure, malformed, time_limit_failure
from memreranker_core.backends.hosted.options import BASE_URL_ENV, DEFAULT_BASE_URL, HostedOptions
from memreranker_core.backends.hosted.responses import Answer, log_odds, probabilities
from memreranker_core.backends.hosted.transport import Transport
from memreranker_core.backends.hosted.urls import ServiceURL
from memreranker_core.backends.options import secret_text
from memreranker_core.errors import (
    AuthenticationError,
    CallCancelledError,
    ConfigurationError,
    HostedBackendError,
    InvalidInputError,
)
from memreranker_core.prompt import DEFAULT_INSTRUCTION, hosted_query_text
from memreranker_core.types import ScoreRequest

logger = logging.getLogger(__name__)


class HostedBackend:
    """Scores through a hosted ``/rerank`` service. Thread-safe: concurrent calls share one pooled session.

    Args:
        model: The service's model name; Memos default ``memos-reranker-4b`` (or ``memos-reranker-0.6b``).
            For other styles it is left out of the request when not given (the server's own model).
        options: A ``HostedOptions``; or pass its fields as keywords (``api_key=...``), not both. The main ones:
        api_key: The key, a ``str`` or a secret object (pydantic ``SecretStr``, Haystack ``Secret``). For
            ``api_style="memos"`` the default is the ``MEMOS_API_KEY`` variable, read at call time. The Memos key
            is never sent to another style's service.
        base_url: Default ``MEMOS_BASE_URL``, else ``https://memos.memtensor.cn/api/openmem/v1``. Plain
            ``http://`` is allowed only to loopback unless ``allow_insecure_http=True``; user info and fragments
            are refused; a query is kept (sent, never shown).
        api_style: ``"memos"`` (default), ``"vllm"``, ``"jina"``, ``"cohere"`` or ``"tei"``.
        connect_timeout: Seconds to connect (default 10).
        read_timeout: Seconds to wait for the next bytes of an answer (default 30).
        attempt_timeout: Seconds one attempt may take in whole, from connecting to the answer's last byte
            (default ``connect_timeout + 2 * read_timeout``): a server that trickles its answer is cut off here,
            and the attempt is retried like a timeout.
        call_timeout: Seconds one call may take in whole, every chunk, retry and backoff wait included
            (default 600); past it the call raises ``ServiceTimeoutError`` and sends nothing more.
        max_retries: Retries after the first attempt (default 3), on connection errors, timeouts, 408, 429, 5xx
            and rate-limit or server body codes; never on other 4xx.
        backoff_factor: Base of the exponential backoff in seconds (default 0.5: waits about 0.5, 1, 2 s).
        max_concurrency: Requests of one call in flight at once (default 4).
        max_request_tokens: Estimated document tokens per request (default 8000: the Memos limit is about 8k).
        max_documents_per_request: Documents per request (default 100; Cohere 1000, TEI 32).
        max_response_bytes: Largest answer accepted once decoded (default 32 MiB), else ``ResponseTooLargeError``.
        oversize: A document alone over ``max_request_tokens``: ``"truncate"`` its tail with a warning
            (default) or ``"error"``.
        tokenizer: The served model's tokenizer (``tokenizer.json``, model folder or hub id): tokens are counted
            with it instead of estimated; with ``api_style="vllm"`` it turns on the exact mode (``exact.py``:
            whole prompts as token ids to vLLM's ``/classify``, scores equal to the local backend's).
        max_length: Exact mode: most tokens of one prompt (default 8192, as local); a document's tail is cut.
        allow_insecure_http: Allow ``http://`` to a host that is not loopback.
        verify: TLS verification: ``True`` (default), a CA bundle path, or ``False``.
        proxies: ``requests``-style proxies; default the environment's, never for a loopback ``base_url``.
        headers: Extra request headers (secret, like the key: never shown, logged or serialized).

    ``close()`` while a call is in flight ends that call promptly with ``CallCancelledError``; a call made through
    ``calls.run_in_thread`` (as ``MemReranker.arerank`` does) stops before its next attempt or chunk once its
    awaiting task is cancelled.

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
        given_url = self.options.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        self.service = ServiceURL.parse(given_url, allow_insecure_http=self.allow_insecure_http)
        self.base_url: str = given_url.strip()
        self.connect_timeout = self.options.connect_timeout
        self.read_timeout = self.options.read_timeout
        self.max_retries = self.options.max_retries
        self.backoff_factor = self.options.backoff_factor
        self.max_concurrency = self.options.max_concurrency
        self.max_request_tokens = self.options.max_request_tokens
        self.max_documents_per_request = self.options.max_documents_per_request or self._dialect.max_documents
        self.oversize = self.options.oversize
        endpoint = self._dialect.endpoint_path(self.service.path)
        self.url = self.service.with_path(endpoint)
        self._where = dataclasses.replace(self.service, path=endpoint).public
        self._extra_headers = dict(self.options.headers or ())
        self._exact: ExactMode | None = None  # the vLLM exact mode (exact.py): api_style="vllm" with a tokenizer
        if self.options.tokenizer is not None and self._dialect.name == "vllm":
            self._exact = ExactMode(
                self.options.tokenizer, max_length=self.options.max_length, service=self.service, oversize=self.oversize
            )
        self._counter: TokenCounter | None = None if self.options.tokenizer is not None else EstimateCounter()
        self._transport = Transport(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            attempt_timeout=self.options.attempt_seconds,
            max_retries=self.max_retries,
            backoff_factor=self.backoff_factor,
            pool_size=max(10, 2 * self.max_concurrency),
            max_response_bytes=self.options.max_response_bytes,
            proxies=dict(self.options.proxies) if self.options.proxies else None,
            verify=self.options.verify,
            no_proxy=self.service.host if self.service.is_loopback else None,
        )
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._calls: set[Call] = set()

    # ----------------------------------------------------------------- protocol
    @property
    def api_style(self) -> str:
        return self._dialect.name

    def score(self, request: ScoreRequest) -> list[float]:
        """Log-odds per document of ``request``, in input order.

        Raises:
            AuthenticationError: No key (Memos: set ``MEMOS_API_KEY`` or pass ``api_key``) or a refused key.
            InvalidInputError: A document is over ``max_request_tokens`` and ``oversize="error"``.
            CallCancelledError: ``close()`` was called, or the async caller cancelled, while the call was in flight.
            HostedBackendError: A subclass naming what the service or the network did wrong.
        """
        documents = list(request.documents)
        if not documents:
            return []
        key = self._resolve_key()
        secrets = (key, *self._extra_headers.values())
        headers = {**self._dialect.headers(key), **self._extra_headers}
        if self._exact is not None:
            return self._exact_score(request, headers, secrets)
        query = hosted_query_text(request.query, request.instruction or DEFAULT_INSTRUCTION, request.context)
        documents = self._fit(documents)
        costs = [self._token_counter().count(text) for text in documents]
        chunks = plan_chunks(costs, self.max_request_tokens, self.max_documents_per_request)

        def score_chunk(call: Call, chunk: list[int]) -> list[float]:
            body = self._request_body(query, [documents[position] for position in chunk])
            answer = self._transport.post_json(self.url, body, headers, where=self._where, secrets=secrets, call=call)
            return self._scores(answer, chunk, secrets)

        with self._open_call() as call:
            parts = self._run(call, chunks, score_chunk, secrets)
        logits: list[float | None] = [None] * len(documents)
        for chunk, values in zip(chunks, parts, strict=True):
            for position, value in zip(chunk, values, strict=True):
                logits[position] = value
        if any(value is None for value in logits):  # cannot happen: each chunk was checked whole
            raise malformed("a document was left unscored after the merge").to_error(self._where, 1, secrets)
        return [float(value) for value in logits]  # type: ignore[arg-type]

    def warm_up(self) -> None:
        """Check that a key is available (when the service needs one) and open the pooled session."""
        self._resolve_key()
        if self._exact is not None:
            self._exact.encoder()
        else:
            self._token_counter()
        self._transport.session()

    def close(self) -> None:
        """Close the session's connections and the chunk threads; calls in flight end at once with
        ``CallCancelledError``. A later call opens them again."""
        with self._lock:
            executor, self._executor = self._executor, None
            calls = list(self._calls)
        for call in calls:
            call.stop("closed")
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        self._transport.close()

    def describe(self) -> dict[str, Any]:
        """Every setting in force; the key appears only as whether one is set (here or in the environment)."""
        return {
            **self.options.describe(),
            "model": self.model,
            "base_url": self.service.public,
            "api_key_set": self._key_value() is not None,
            "attempt_timeout": self.options.attempt_seconds,
            "max_documents_per_request": self.max_documents_per_request,
            "mode": "exact" if self._exact is not None else "text",
        }

    def stats(self) -> dict[str, int]:
        """Counts since creation: HTTP requests sent, retries made, requests that failed after retries."""
        return self._transport.stats()

    def __repr__(self) -> str:
        return f"HostedBackend(model={self.model!r}, base_url={self.service.public!r}, api_style={self.api_style!r})"

    # ----------------------------------------------------------------- one request
    def _request_body(self, query: str, texts: list[str]) -> dict[str, Any]:
        """The JSON body of one request: the one place a body is built."""
        return self._dialect.body(self.model, query, texts)

    def _scores(self, answer: Answer, chunk: list[int], secrets: Sequence[str | None]) -> list[float]:
        """Log-odds of one request's documents from the service's answer: the one place an answer becomes scores."""
        outcome = probabilities(answer, chunk, secrets)
        if isinstance(outcome, Failure):
            raise outcome.to_error(self._where, 1, secrets)
        return [log_odds(probability) for probability in outcome]

    # ----------------------------------------------------------------- vLLM exact mode and token counts
    def _exact_score(
        self, request: ScoreRequest, headers: dict[str, str], secrets: Sequence[str | None]
    ) -> list[float]:
        """The exact mode (``exact.py``): every whole prompt as token ids to ``/classify``, log-odds read back."""
        exact = self._exact
        assert exact is not None
        prepared, chunks = exact.plan(request, self.max_request_tokens, self.max_documents_per_request)

        def score_chunk(call: Call, chunk: list[int]) -> list[float]:
            body = exact.body(self.model, prepared, chunk)
            try:
                answer = self._transport.post_json(
                    exact.url, body, headers, where=exact.where, secrets=secrets, call=call
                )
            except HostedBackendError as error:
                raise exact.explain(error) from None
            return exact.logits(answer, chunk, secrets)

        with self._open_call() as call:
            parts = self._run(call, chunks, score_chunk, secrets)
        return merge_chunks(len(prepared.sequences), chunks, parts)

    def _token_counter(self) -> TokenCounter:
        """The served model's tokenizer when ``tokenizer`` names it (loaded on first use), else the estimate."""
        with self._lock:
            if self._counter is None:
                from memreranker_core.backends.hosted.tokenizer import load_tokenizer

                self._counter = TokenizerCounter(load_tokenizer(self.options.tokenizer))
            return self._counter

    # ----------------------------------------------------------------- key and documents
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
        if key is not None and (not key.isascii() or not key.isprintable() or any(c.isspace() for c in key)):
            raise AuthenticationError(  # the key is not echoed
                "the API key contains spaces, line breaks, control characters or non-ASCII characters, which an "
                "HTTP header cannot carry; copy it again as plain text"
            )
        return key

    def _fit(self, documents: list[str]) -> list[str]:
        """Documents alone over the token budget: truncated from the tail (one warning) or refused."""
        limit = self.max_request_tokens
        count = self._token_counter().count
        over = [(position, cost) for position, text in enumerate(documents) if (cost := count(text)) > limit]
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
            fitted[position] = self._token_counter().truncate(documents[position], limit)
        logger.warning(
            "truncated %d document(s) at position(s) %s from the tail to about %d tokens, the per-request limit "
            "(max_request_tokens); split long memories before reranking, or pass oversize='error' to refuse them",
            len(positions),
            positions[:10],
            limit,
        )
        return fitted

    # ----------------------------------------------------------------- running the chunks
    @contextmanager
    def _open_call(self) -> Iterator[Call]:
        call = Call(self.options.call_timeout)
        with self._lock:
            self._calls.add(call)
        try:
            with call:
                yield call
        finally:
            with self._lock:
                self._calls.discard(call)

    def _run(
        self,
        call: Call,
        chunks: list[list[int]],
        score_chunk: Callable[[Call, list[int]], list[float]],
        secrets: Sequence[str | None],
    ) -> list[list[float]]:
        """Each chunk's log-odds, in chunk order: one after the other, or up to ``max_concurrency`` at once."""
        if len(chunks) == 1 or self.max_concurrency == 1:
            parts = []
            for chunk in chunks:
                call.check(self._where)
                parts.append(score_chunk(call, chunk))
            return parts
        done: dict[int, list[float]] = {}
        failed: list[BaseException] = []

        def job(number: int, chunk: list[int]) -> None:
            if call.stopped:
                return
            try:
                values = score_chunk(call, chunk)
            except BaseException as exc:  # handed to the caller's thread below
                with call.condition:
                    failed.append(exc)
                call.stop("failed")  # the other chunks stop before their next attempt
                return
            with call.condition:
                done[number] = values
                call.condition.notify_all()

        try:
            executor = self._chunk_executor()
            for number, chunk in enumerate(chunks):
                executor.submit(job, number, chunk)
        except RuntimeError:  # close() shut the pool down meanwhile
            call.stop("closed")
        with call.condition:
            while len(done) < len(chunks) and call.reason is None and (left := call.remaining()) > 0:
                call.condition.wait(left)
        real = [exc for exc in failed if not isinstance(exc, CallCancelledError)]
        if real:
            raise real[0]
        if len(done) == len(chunks):
            return [done[number] for number in range(len(chunks))]
        if call.reason is None:
            call.stop("timeout")
            raise time_limit_failure("call_timeout", self.options.call_timeout).to_error(self._where, 1, secrets)
        call.check(self._where)
        raise failed[0]  # pragma: no cover - a stopped call always has a reason that check() raises

    def _chunk_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.max_concurrency, thread_name_prefix="memreranker-hosted"
                )
            return self._executor


__all__ = ["DEFAULT_BASE_URL", "HostedBackend"]
