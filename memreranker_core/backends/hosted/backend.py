"""``HostedBackend``: the Memos Rerank API, or any vLLM / Jina / Cohere / TEI ``/rerank`` endpoint.

One call is planned without I/O (the key, the prompt's query text, documents fitted to the token budget and split
into requests: ``chunking``, or token ids for the vLLM exact mode: ``exact``), then sent as one task on the
backend's event loop (``loop``): its requests go out at most ``max_concurrency`` at once over the pooled client
(``transport``), each answer is checked index by index (``responses``, ``exact``), and the log-odds are merged
back into input order once, for both modes. ``score`` (sync) and ``ascore`` (async) run that same coroutine: a
sync caller blocks its own thread on it, an async caller awaits it without any thread of its own.

Every setting is a field of ``HostedOptions`` (``options.py``: defaults, checks and help, one per option).

Example:
    >>> backend = HostedBackend(api_key="sk-...", base_url="https://memos.memtensor.cn/api/openmem/v1")
    >>> backend.describe()["api_style"]
    'memos'
    >>> "sk-" in repr(backend)
    False
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from memreranker_core.backends.hosted.calls import Call, deadline
from memreranker_core.backends.hosted.chunking import EstimateCounter, TokenCounter, TokenizerCounter, plan_chunks
from memreranker_core.backends.hosted.dialects import DIALECTS, Dialect
from memreranker_core.backends.hosted.exact import ExactMode
from memreranker_core.backends.hosted.failures import Failure, malformed, time_limit_failure
from memreranker_core.backends.hosted.loop import LoopThread
from memreranker_core.backends.hosted.options import BASE_URL_ENV, DEFAULT_BASE_URL, HostedOptions
from memreranker_core.backends.hosted.responses import Answer, log_odds, probabilities
from memreranker_core.backends.hosted.transport import Transport
from memreranker_core.backends.hosted.urls import ServiceURL
from memreranker_core.backends.options import secret_text
from memreranker_core.checkpoint import resolve_instruction
from memreranker_core.errors import AuthenticationError, ConfigurationError, HostedBackendError, InvalidInputError
from memreranker_core.prompt import hosted_query_text
from memreranker_core.types import ScoreRequest

logger = logging.getLogger(__name__)

Secrets = Sequence[str | None]


@dataclass(frozen=True)
class CallPlan:
    """One call, planned without I/O: where its requests go, which documents each carries, how each is built
    and read.

    Attributes:
        url: The endpoint, query included.
        where: The endpoint as shown in messages (no query).
        count: Documents in the call.
        chunks: Input positions per request.
        body: Builds the request body for a chunk.
        read: Reads one answer into log-odds for a chunk, in chunk order (every index checked).
        explain: Makes an error clearer for this mode (identity for the plain dialects).
        headers: Request headers, the key included.
        secrets: The key and extra header values, removed from every message.
    """

    url: str
    where: str
    count: int
    chunks: list[list[int]]
    body: Callable[[list[int]], Any]
    read: Callable[[Answer, list[int], Secrets], list[float]]
    explain: Callable[[HostedBackendError], HostedBackendError]
    headers: dict[str, str]
    secrets: tuple[str | None, ...]


class HostedBackend:
    """Scores through a hosted ``/rerank`` service. Thread-safe, and async-native: every call of every thread and
    event loop runs on the backend's one event loop, over one pooled client.

    Args:
        model: The service's model name; Memos default ``memos-reranker-4b`` (or ``memos-reranker-0.6b``).
            For other styles it is left out of the request when not given (the server's own model).
        options: A ``HostedOptions``; or pass its fields as keywords (``api_key=...``), not both. Each option's
            meaning and default is its field's help in ``HostedOptions``.

    Limits: ``max_concurrency`` requests of one call are in flight at once; ``max_connections`` requests of the
    whole backend (all calls and callers). ``call_timeout`` bounds a call in whole, ``close()`` ends every call in
    flight with ``CallCancelledError``, and cancelling an ``ascore`` caller stops its call: each within a moment,
    also during a backoff wait or a wait for a connection.

    Example:
        >>> backend = HostedBackend(api_key="sk-...", base_url="https://memos.memtensor.cn/api/openmem/v1")
        >>> backend.describe()["max_connections"]
        128
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
        given_url = self.options.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        self.service = ServiceURL.parse(given_url, allow_insecure_http=self.options.allow_insecure_http)
        self.max_documents_per_request = self.options.max_documents_per_request or self._dialect.max_documents
        endpoint = self._dialect.endpoint_path(self.service.path)
        self.url = self.service.with_path(endpoint)
        self._where = dataclasses.replace(self.service, path=endpoint).public
        self._extra_headers = dict(self.options.headers or ())
        self._exact: ExactMode | None = None  # the vLLM exact mode (exact.py): api_style="vllm" with a tokenizer
        if self.options.tokenizer is not None and self._dialect.name == "vllm":
            self._exact = ExactMode(
                self.options.tokenizer,
                max_length=self.options.max_length,
                service=self.service,
                oversize=self.options.oversize,
            )
        self._counter: TokenCounter | None = None if self.options.tokenizer is not None else EstimateCounter()
        self._transport = Transport(
            self.options, loopback=self.service.is_loopback, host=self.service.host, scheme=self.service.scheme
        )
        self._transport.remember(self.service.query_secrets())
        self._loop = LoopThread("memreranker-hosted")
        weakref.finalize(self, self._loop.stop)
        self._lock = threading.Lock()
        self._calls: set[Call] = set()

    # ----------------------------------------------------------------- protocol
    @property
    def api_style(self) -> str:
        return self._dialect.name

    @property
    def model_ref(self) -> str | None:
        """The model name sent to the service (``None``: the server's own)."""
        return self.model

    def score(self, request: ScoreRequest) -> list[float]:
        """Log-odds per document of ``request``, in input order.

        Raises:
            AuthenticationError: No key (Memos: set ``MEMOS_API_KEY`` or pass ``api_key``) or a refused key.
            InvalidInputError: A document is over ``max_request_tokens`` and ``oversize="error"``.
            CallCancelledError: ``close()`` was called while the call was in flight.
            HostedBackendError: A subclass naming what the service or the network did wrong.
        """
        if not request.documents:
            return []
        plan = self._plan(request)
        with self._open_call() as call:
            try:
                return self._loop.run(self._send(plan, call))
            except concurrent.futures.CancelledError:  # closed before its task ran a step
                raise call.cancelled_error(plan.where) from None

    async def ascore(self, request: ScoreRequest) -> list[float]:
        """``score`` for async callers: no thread of its own, and cancelling the awaiting task stops the call (its
        requests in flight are aborted, nothing more is sent).

        Raises:
            The same errors as ``score``.
        """
        if not request.documents:
            return []
        if self._needs_tokenizer():  # loading a tokenizer reads files: not on the caller's loop
            await asyncio.to_thread(self._load_tokenizer)
        plan = self._plan(request)
        with self._open_call() as call:
            try:
                return await self._loop.submit(self._send(plan, call))
            except asyncio.CancelledError:
                current = asyncio.current_task()
                cancelling = getattr(current, "cancelling", None)  # Python 3.11+: whether this caller was cancelled
                if call.reason == "closed" and not (cancelling is not None and cancelling()):
                    raise call.cancelled_error(plan.where) from None  # closed by another caller, not cancelled
                raise

    def warm_up(self) -> None:
        """Check that a key is available (when the service needs one), load the tokenizer, open the client."""
        self._resolve_key()
        self._load_tokenizer()

        async def open_client() -> None:
            self._transport.pool()

        self._loop.run(open_client())

    def close(self) -> None:
        """End every call in flight with ``CallCancelledError``, close the connections and the loop's thread. A
        later call opens them again."""
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            call.stop("closed")
        self._loop.stop(self._transport.aclose)

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

    # ----------------------------------------------------------------- planning (no I/O)
    def _plan(self, request: ScoreRequest) -> CallPlan:
        key = self._resolve_key()
        secrets = (key, *self._extra_headers.values())
        self._transport.remember(secrets)
        headers = {**self._dialect.headers(key), **self._extra_headers}
        exact = self._exact
        if exact is not None:
            prepared, chunks = exact.plan(request, self.options.max_request_tokens, self.max_documents_per_request)
            return CallPlan(
                url=exact.url,
                where=exact.where,
                count=len(prepared.sequences),
                chunks=chunks,
                body=lambda chunk: exact.body(self.model, prepared, chunk),
                read=exact.logits,
                explain=exact.explain,
                headers=headers,
                secrets=secrets,
            )
        query = hosted_query_text(request.query, resolve_instruction(request.instruction), request.context)
        documents = self._fit(list(request.documents))
        counter = self._token_counter()
        chunks = plan_chunks(
            [counter.count(text) for text in documents],
            self.options.max_request_tokens,
            self.max_documents_per_request,
        )
        return CallPlan(
            url=self.url,
            where=self._where,
            count=len(documents),
            chunks=chunks,
            body=lambda chunk: self._dialect.body(self.model, query, [documents[position] for position in chunk]),
            read=self._log_odds,
            explain=lambda error: error,
            headers=headers,
            secrets=secrets,
        )

    def _log_odds(self, answer: Answer, chunk: list[int], secrets: Secrets) -> list[float]:
        """Log-odds of one request's documents from a plain dialect's answer."""
        outcome = probabilities(answer, chunk, secrets)
        if isinstance(outcome, Failure):
            raise outcome.to_error(self._where, 1, secrets)
        return [log_odds(probability) for probability in outcome]

    def _needs_tokenizer(self) -> bool:
        if self._exact is not None:
            return not self._exact.loaded
        return self._counter is None

    def _load_tokenizer(self) -> None:
        """Load what the call plans with: the exact mode's prompt encoder, or the ``tokenizer`` option's counter."""
        if self._exact is not None:
            self._exact.encoder()
        else:
            self._token_counter()

    def _token_counter(self) -> TokenCounter:
        """The served model's tokenizer when ``tokenizer`` names it (loaded on first use), else the estimate."""
        with self._lock:
            if self._counter is None:
                from memreranker_core.backends.hosted.tokenizer import load_tokenizer

                assert self.options.tokenizer is not None  # without it the estimate was set at construction
                self._counter = TokenizerCounter(load_tokenizer(self.options.tokenizer))
            return self._counter

    def _key_value(self) -> str | None:
        key = secret_text(self.options.api_key)
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
        limit = self.options.max_request_tokens
        counter = self._token_counter()
        documents = [counter.head(text, limit) for text in documents]  # a 20 MB memory costs what `limit` do
        over = [(position, cost) for position, text in enumerate(documents) if (cost := counter.count(text)) > limit]
        if not over:
            return documents
        positions = [position for position, _cost in over]
        if self.options.oversize == "error":
            raise InvalidInputError(
                f"document(s) {positions[:10]} are at least {max(cost for _p, cost in over)} tokens, over the "
                f"service's per-request limit (max_request_tokens={limit}); shorten or split them, or pass "
                "oversize='truncate' to cut their tails"
            )
        fitted = list(documents)
        for position in positions:
            fitted[position] = counter.truncate(documents[position], limit)
        logger.warning(
            "truncated %d document(s) at position(s) %s from the tail to about %d tokens, the per-request limit "
            "(max_request_tokens); split long memories before reranking, or pass oversize='error' to refuse them",
            len(positions),
            positions[:10],
            limit,
        )
        return fitted

    # ----------------------------------------------------------------- sending (on the loop)
    @contextmanager
    def _open_call(self) -> Iterator[Call]:
        """A new call, known to ``close()`` while it runs."""
        call = Call(self.options.call_timeout)
        with self._lock:
            self._calls.add(call)
        try:
            yield call
        finally:
            with self._lock:
                self._calls.discard(call)

    async def _send(self, plan: CallPlan, call: Call) -> list[float]:
        """The call's task: every request, at most ``max_concurrency`` at once, merged into input order."""
        call.started()
        try:
            async with deadline(max(call.remaining(), 0.0)):
                parts = await self._gather(plan, call)
        except TimeoutError:
            raise time_limit_failure("call_timeout", call.deadline_s).to_error(plan.where, 1, plan.secrets) from None
        except asyncio.CancelledError:
            if call.reason == "closed":
                raise call.cancelled_error(plan.where) from None
            raise
        return merge(plan.count, plan.chunks, parts, plan.where, plan.secrets)

    async def _gather(self, plan: CallPlan, call: Call) -> list[list[float]]:
        """Each chunk's log-odds, in chunk order; the first failure (in chunk order) stops the others."""
        limit = asyncio.Semaphore(self.options.max_concurrency)

        async def one(chunk: list[int]) -> list[float]:
            async with limit:
                try:
                    answer = await self._transport.post_json(
                        plan.url, plan.body(chunk), plan.headers, where=plan.where, call=call, secrets=plan.secrets
                    )
                except HostedBackendError as error:
                    raise plan.explain(error) from None
                return plan.read(answer, chunk, plan.secrets)

        if len(plan.chunks) == 1:
            return [await one(plan.chunks[0])]
        return await first_failure_stops_all([one(chunk) for chunk in plan.chunks])


async def first_failure_stops_all(jobs: Sequence[Awaitable[list[float]]]) -> list[list[float]]:
    """Run ``jobs`` at once; their results in order, or the first error (in job order) once any fails, the other
    jobs cancelled and awaited first."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def merge(
    count: int, chunks: Sequence[Sequence[int]], parts: Sequence[Sequence[float]], where: str, secrets: Secrets = ()
) -> list[float]:
    """The chunks' log-odds back in input order: every position filled exactly once, or ``MalformedResponseError``.

    Example:
        >>> merge(3, [[2, 0], [1]], [[0.5, -1.0], [2.0]], "https://host/rerank")
        [-1.0, 2.0, 0.5]
    """
    logits: list[float | None] = [None] * count
    for chunk, values in zip(chunks, parts, strict=True):
        if len(chunk) != len(values):
            raise malformed(f"{len(values)} scores for {len(chunk)} documents sent").to_error(where, 1, secrets)
        for position, value in zip(chunk, values, strict=True):
            if logits[position] is not None:
                raise malformed(f"document {position} scored twice").to_error(where, 1, secrets)
            logits[position] = value
    missing = [position for position, value in enumerate(logits) if value is None]
    if missing:
        raise malformed(f"document(s) {missing[:10]} left unscored").to_error(where, 1, secrets)
    return [float(value) for value in logits]  # type: ignore[arg-type]


__all__ = ["CallPlan", "HostedBackend", "first_failure_stops_all", "merge"]
