"""Many callers at once on the hosted backend, against real loopback services: async without a thread per call,
limits that mean what the docs say (``max_concurrency`` per call, ``max_connections`` per reranker), and
deadlines, ``close()`` and cancellation that cut every wait (connect retries, an answer that never comes, a slow
drip, a long ``Retry-After``, a wait for a free connection).

Counts, not times: requests in flight are counted at the server, threads in this process. The only clocks are hang
guards (``HANG_GUARD_S``), far below what a wait that was not cut would take (``NATURAL_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from memreranker_core import MemReranker, errors
from tests.support.memories import HOSTED_DOCS, HOSTED_QUERY
from tests.support.rerank_server import Fault, RerankServer, SilentListener, overlap_score, refused_url

KEY = "sk-concurrency-SECRET-77"
#: A guard against a hang: a cut wait ends long before it; a wait that was not cut lasts NATURAL_S or more.
HANG_GUARD_S = 10.0
NATURAL_S = 30.0
CALLERS = 100


class InFlight:
    """A scorer that counts the requests in flight at the server (in all, and per query), holding each one until
    ``hold_until`` are in flight together or ``max_hold_s`` has passed, so that a limit that does not hold shows."""

    def __init__(self, hold_until: int, max_hold_s: float = HANG_GUARD_S, on_peak: Callable[[], None] | None = None):
        self.hold_until = hold_until
        self.max_hold_s = max_hold_s
        self.on_peak = on_peak
        self.condition = threading.Condition()
        self.now = 0
        self.peak = 0
        self.per_query: Counter[str] = Counter()
        self.peak_per_query: Counter[str] = Counter()
        self.reached = False

    def __call__(self, query: str, documents: list[str]) -> list[float]:
        with self.condition:
            self.now += 1
            self.per_query[query] += 1
            self.peak = max(self.peak, self.now)
            self.peak_per_query[query] = max(self.peak_per_query[query], self.per_query[query])
            if self.now >= self.hold_until and not self.reached:
                self.reached = True
                if self.on_peak is not None:
                    self.on_peak()
                self.condition.notify_all()
            self.condition.wait_for(lambda: self.reached, timeout=self.max_hold_s)
        try:
            return overlap_score(query, documents)
        finally:
            with self.condition:
                self.now -= 1
                self.per_query[query] -= 1


def hosted(base_url: str, **options) -> MemReranker:
    settings = {"api_key": KEY, "backoff_factor": 0.001, **options}
    return MemReranker(backend="hosted", base_url=base_url, **settings)


def client_threads() -> set[threading.Thread]:
    """This process's threads, less the loopback server's own (one per connection it serves)."""
    return {
        thread
        for thread in threading.enumerate()
        if "process_request_thread" not in thread.name and "serve_forever" not in thread.name
    }


# ----------------------------------------------------------------- async without a thread per call
async def test_100_concurrent_async_calls_are_all_in_flight_at_once_on_one_client_thread():
    before = client_threads()
    seen: list[set[threading.Thread]] = []
    gate = InFlight(hold_until=CALLERS, on_peak=lambda: seen.append(client_threads()))
    with RerankServer(gate, api_key=KEY) as server, hosted(server.base_url) as rr:
        queries = [f"{HOSTED_QUERY} #{n}" for n in range(CALLERS)]
        results = await asyncio.gather(*(rr.ascore(query, HOSTED_DOCS) for query in queries))
    assert gate.peak == CALLERS  # every call's request was in flight at once: none queued behind a worker pool
    assert seen, "the server never saw all the calls in flight together"
    added = sorted(thread.name for thread in seen[0] - before)  # earlier tests' loop threads may come and go
    assert added == ["memreranker-hosted"], added  # one loop thread, whatever the number of calls
    for query, scores in zip(queries, results, strict=True):
        assert scores == pytest.approx(overlap_score(query, HOSTED_DOCS), rel=1e-12)


def test_100_threads_calling_score_share_one_loop_thread_and_get_their_own_scores():
    before = client_threads()
    seen: list[set[threading.Thread]] = []
    gate = InFlight(hold_until=CALLERS, on_peak=lambda: seen.append(client_threads()))
    results: dict[int, list[float]] = {}
    with RerankServer(gate, api_key=KEY) as server, hosted(server.base_url) as rr:

        def call(n: int) -> None:
            results[n] = rr.score(f"{HOSTED_QUERY} #{n}", HOSTED_DOCS)

        workers = [threading.Thread(target=call, args=(n,)) for n in range(CALLERS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(HANG_GUARD_S * 3)
        callers = set(workers)
    assert gate.peak == CALLERS and seen
    assert sorted(thread.name for thread in seen[0] - before - callers) == ["memreranker-hosted"]
    assert sorted(results) == list(range(CALLERS))
    for n, scores in results.items():
        assert scores == pytest.approx(overlap_score(f"{HOSTED_QUERY} #{n}", HOSTED_DOCS), rel=1e-12)


# ----------------------------------------------------------------- limits
DOCS8 = [f"{text} ({n})" for n, text in enumerate(HOSTED_DOCS * 3)][:8]


async def test_max_concurrency_bounds_each_call_and_two_calls_do_not_queue_behind_each_other():
    gate = InFlight(hold_until=4)
    with RerankServer(gate, api_key=KEY) as server:
        with hosted(server.base_url, max_documents_per_request=2, max_concurrency=2) as rr:  # 4 requests a call
            first, second = await asyncio.gather(rr.ascore("first?", DOCS8), rr.ascore("second?", DOCS8))
    assert gate.peak_per_query == {"first?": 2, "second?": 2}  # each call: at most max_concurrency in flight
    assert gate.peak == 4  # both calls had their two in flight together
    assert len(server.requests) == 8
    assert first == pytest.approx(overlap_score("first?", DOCS8), rel=1e-12)
    assert second == pytest.approx(overlap_score("second?", DOCS8), rel=1e-12)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_max_connections_bounds_the_whole_reranker(path):
    gate = InFlight(hold_until=4, max_hold_s=0.3)  # 4 at once would mean the limit of 3 did not hold
    with RerankServer(gate, api_key=KEY) as server, hosted(server.base_url, max_connections=3) as rr:
        queries = [f"q{n}?" for n in range(10)]
        if path == "async":

            async def all_at_once():
                return await asyncio.gather(*(rr.ascore(query, HOSTED_DOCS) for query in queries))

            results = asyncio.run(all_at_once())
        else:
            with contextlib.ExitStack():
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(len(queries)) as pool:
                    results = list(pool.map(lambda query: rr.score(query, HOSTED_DOCS), queries))
    assert gate.peak == 3
    assert len(server.requests) == len(queries)
    for query, scores in zip(queries, results, strict=True):
        assert scores == pytest.approx(overlap_score(query, HOSTED_DOCS), rel=1e-12)


def test_max_connections_is_an_option_with_a_documented_default_and_bounds():
    assert MemReranker(backend="hosted").describe()["max_connections"] == 128
    with pytest.raises(errors.ConfigurationError, match="max_connections"):
        MemReranker(backend="hosted", max_connections=0)


# ----------------------------------------------------------------- deadlines
def test_call_timeout_cuts_connect_retries_and_their_backoff_against_a_refused_port():
    rr = hosted(refused_url(), call_timeout=1.0, max_retries=8, backoff_factor=1.0)
    started = time.monotonic()
    with pytest.raises((errors.ServiceConnectionError, errors.ServiceTimeoutError)):
        rr.score(HOSTED_QUERY, HOSTED_DOCS)
    assert time.monotonic() - started < HANG_GUARD_S  # a guard: urllib3's own retries took 91 s here
    assert rr.backend.stats()["requests"] == rr.backend.stats()["retries"] + 1  # one retry layer: the client's


@pytest.mark.parametrize("path", ["sync", "async"])
def test_call_timeout_cuts_a_service_that_accepts_and_never_answers(path):
    with SilentListener() as silent:
        rr = hosted(silent.url, read_timeout=NATURAL_S, call_timeout=1.0)
        with pytest.raises(errors.ServiceTimeoutError, match="call_timeout=1s"):
            run(rr, path)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_call_timeout_cuts_an_answer_dripped_a_byte_at_a_time(path):
    with RerankServer(api_key=KEY) as server:
        server.inject(Fault.trickle(every=0.05))
        rr = hosted(server.base_url, read_timeout=NATURAL_S, attempt_timeout=NATURAL_S * 2, call_timeout=1.0)
        with pytest.raises(errors.ServiceTimeoutError, match="call_timeout=1s"):
            run(rr, path)
        assert len(server.requests) == 1


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_retry_after_that_would_pass_call_timeout_ends_the_call_at_once(path):
    with RerankServer(api_key=KEY) as server:
        server.inject(Fault.rate_limited(retry_after=str(int(NATURAL_S))))
        rr = hosted(server.base_url, call_timeout=5.0)
        started = time.monotonic()
        with pytest.raises(errors.RateLimitError):
            run(rr, path)
        assert time.monotonic() - started < HANG_GUARD_S
        assert len(server.requests) == 1


def run(rr: MemReranker, path: str) -> list[float]:
    if path == "async":
        return asyncio.run(rr.ascore(HOSTED_QUERY, HOSTED_DOCS))
    return rr.score(HOSTED_QUERY, HOSTED_DOCS)


# ----------------------------------------------------------------- close() and cancellation at every wait
@contextlib.contextmanager
def waiting_call(wait: str) -> Iterator[tuple[MemReranker, Callable[[], bool], Callable[[], int]]]:
    """A reranker whose next call will sit in ``wait`` for ``NATURAL_S`` or more; ``at_wait()`` says when it is
    there, ``sent()`` how many requests reached the service."""
    long = {"call_timeout": NATURAL_S * 4, "read_timeout": NATURAL_S * 2, "attempt_timeout": NATURAL_S * 3}
    if wait == "connect-retry-backoff":
        rr = hosted(refused_url(), backoff_factor=NATURAL_S, max_retries=2, **long)
        yield rr, lambda: rr.backend.stats()["retries"] >= 1, lambda: 0
    elif wait == "no-answer":
        with SilentListener() as silent:
            rr = hosted(silent.url, **long)
            yield rr, lambda: silent.connections >= 1, lambda: silent.connections
    elif wait in ("slow-drip", "retry-after"):
        with RerankServer(api_key=KEY) as server:
            if wait == "slow-drip":
                server.inject(Fault.trickle(every=0.2))
            else:
                server.inject(Fault.rate_limited(retry_after=str(int(NATURAL_S))))
            rr = hosted(server.base_url, **long)
            ready = (
                (lambda: len(server.requests) >= 1)
                if wait == "slow-drip"
                else (lambda: rr.backend.stats()["retries"] >= 1)
            )
            yield rr, ready, lambda: len(server.requests)
    elif wait == "free-connection":  # the one connection is held by a call the service never answers
        with SilentListener() as silent:
            rr = hosted(silent.url, max_connections=1, **long)
            holder = threading.Thread(target=_swallow, args=(rr,), daemon=True)
            holder.start()
            _until(lambda: silent.connections >= 1)
            yield rr, lambda: True, lambda: silent.connections
    else:
        raise ValueError(wait)


def _swallow(rr: MemReranker) -> None:
    with contextlib.suppress(errors.MemRerankerError):
        rr.score("holder?", HOSTED_DOCS)


def _until(condition: Callable[[], bool]) -> None:
    end = time.monotonic() + HANG_GUARD_S
    while not condition():
        assert time.monotonic() < end, "the call never reached the wait"
        time.sleep(0.01)


WAITS = ["connect-retry-backoff", "no-answer", "slow-drip", "retry-after", "free-connection"]


@pytest.mark.parametrize("wait", WAITS)
def test_close_ends_a_sync_call_at_each_wait_with_a_typed_error(wait):
    with waiting_call(wait) as (rr, at_wait, sent):
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(rr.score(HOSTED_QUERY, HOSTED_DOCS))
            except Exception as exc:
                outcome.append(exc)

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        _until(at_wait)
        time.sleep(0.05)  # well inside the wait
        requests_before = sent()
        rr.close()
        worker.join(HANG_GUARD_S)
        assert not worker.is_alive(), f"close() did not end the call waiting in {wait}"
        assert len(outcome) == 1 and isinstance(outcome[0], errors.CallCancelledError), outcome
        assert sent() == requests_before  # nothing more reached the service


@pytest.mark.parametrize("stop", ["close", "cancel"])
@pytest.mark.parametrize("wait", WAITS)
async def test_close_and_cancellation_end_an_async_call_at_each_wait(wait, stop):
    with waiting_call(wait) as (rr, at_wait, sent):
        task = asyncio.ensure_future(rr.ascore(HOSTED_QUERY, HOSTED_DOCS))
        end = time.monotonic() + HANG_GUARD_S
        while not at_wait():
            assert time.monotonic() < end, "the call never reached the wait"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        requests_before = sent()
        if stop == "close":
            await asyncio.to_thread(rr.close)
            with pytest.raises(errors.CallCancelledError):
                await asyncio.wait_for(task, HANG_GUARD_S)
        else:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, HANG_GUARD_S)
        await asyncio.sleep(0.1)  # a request the call failed to stop would go out now
        assert sent() == requests_before
        rr.close()


async def test_a_cancelled_caller_does_not_disturb_the_other_callers():
    gate = InFlight(hold_until=CALLERS)
    with RerankServer(gate, api_key=KEY) as server, hosted(server.base_url) as rr:
        tasks = [asyncio.ensure_future(rr.ascore(f"q{n}?", HOSTED_DOCS)) for n in range(CALLERS)]
        while gate.now < CALLERS // 2:
            await asyncio.sleep(0.01)
        for task in tasks[::2]:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for n, outcome in enumerate(outcomes):
        if n % 2 == 0:
            assert isinstance(outcome, asyncio.CancelledError) or outcome == pytest.approx(
                overlap_score(f"q{n}?", HOSTED_DOCS), rel=1e-12
            )  # cancelled, or already answered
        else:
            assert outcome == pytest.approx(overlap_score(f"q{n}?", HOSTED_DOCS), rel=1e-12)


def test_close_while_many_callers_keep_calling_gives_each_call_its_scores_or_a_cancelled_error():
    outcomes: list[object] = []
    lock = threading.Lock()
    with RerankServer(api_key=KEY) as server, hosted(server.base_url, max_documents_per_request=2) as rr:
        stop = threading.Event()

        def caller(n: int) -> None:
            query = f"q{n}?"
            while not stop.is_set():
                try:
                    got: object = rr.score(query, HOSTED_DOCS)
                    ok = got == pytest.approx(overlap_score(query, HOSTED_DOCS), rel=1e-12)
                    outcome: object = "ok" if ok else ("wrong", got)
                except errors.CallCancelledError:
                    outcome = "cancelled"
                except Exception as exc:  # anything else is a bug: a closed reranker must reopen cleanly
                    outcome = exc
                with lock:
                    outcomes.append(outcome)

        workers = [threading.Thread(target=caller, args=(n,), daemon=True) for n in range(20)]
        for worker in workers:
            worker.start()
        for _ in range(5):  # close() again and again while calls are in flight and new ones start
            _until(lambda: len(outcomes) >= 20)
            rr.close()
            with lock:
                outcomes.append("closed")
        stop.set()
        for worker in workers:
            worker.join(HANG_GUARD_S)
    assert not any(worker.is_alive() for worker in workers)
    unexpected = [outcome for outcome in outcomes if outcome not in ("ok", "cancelled", "closed")]
    assert unexpected == []
    assert outcomes.count("ok") > 20
