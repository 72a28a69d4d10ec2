"""Load test: 200 concurrent rerank calls (100 from threads, 100 from asyncio) against loopback services that
inject random faults. Every call either returns complete, correct results or raises a typed error; none returns a
wrong score. The counts are printed (run with ``-s``) for the issue's note."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from memreranker_core import MemReranker, errors
from tests.support.rerank_server import BENIGN_KINDS, Fault, RerankServer, overlap_score, random_fault_picker

KEY = "sk-load-SECRET"
CALLS_PER_MODE = 100
FAULT_RATE = 0.2
FAULTS = [
    500, 502, 503, 408, Fault.rate_limited(retry_after="0"),
    "drop", "reset", Fault.slow(0.4),
    "malformed_json", Fault.html(502), Fault.html(200),
    Fault.body_code(50000), Fault.body_code(40300), Fault.body_code(40132),
    "missing_index", "duplicate_index", "out_of_range_index", "score_out_of_range",
    "shuffled", "wrapped", "wrapped_list",
]  # fmt: skip
WORDS = "Caroline Melanie went support group painted lake pottery class hiking week dog park city rain".split()
POOL = [
    f"{random.Random(i).choice(WORDS)} {random.Random(i + 100).choice(WORDS)} memory number {i} about "
    f"{' '.join(random.Random(i + 200).sample(WORDS, 4))}"
    for i in range(40)
]


def make_calls(seed: int) -> list[tuple[str, list[str], int | None]]:
    rng = random.Random(seed)
    calls = []
    for _ in range(CALLS_PER_MODE):
        query = "Where did " + " ".join(rng.sample(WORDS, 3)) + "?"
        docs = rng.sample(POOL, rng.randint(1, 12))
        calls.append((query, docs, rng.choice([None, 3])))
    return calls


def check(query: str, docs: list[str], top_n: int | None, results) -> bool:
    """True when the results are exactly the right documents with the right scores, best first."""
    want = overlap_score(query, docs)
    best = sorted(range(len(docs)), key=lambda i: -want[i])
    if top_n is not None:
        best = best[:top_n]
    if [r.index for r in results] != best:
        return False
    return all(
        r.document == docs[r.index] and abs(r.score - want[r.index]) <= 1e-12 * max(1.0, want[r.index]) for r in results
    )


def hosted(server: RerankServer) -> MemReranker:
    return MemReranker(
        backend="hosted", base_url=server.base_url, api_style=server.api_style, api_key=KEY, max_retries=3,
        backoff_factor=0.001, read_timeout=0.25, max_documents_per_request=4, max_concurrency=3,
    )  # fmt: skip


class Tally:
    def __init__(self) -> None:
        self.calls = 0
        self.ok = 0
        self.wrong = 0
        self.errors: Counter[str] = Counter()
        self.untyped: list[BaseException] = []

    def record(self, call, outcome) -> None:
        self.calls += 1
        if isinstance(outcome, errors.HostedBackendError):
            self.errors[type(outcome).__name__] += 1
        elif isinstance(outcome, BaseException):
            self.untyped.append(outcome)
        elif check(*call, outcome):
            self.ok += 1
        else:
            self.wrong += 1


def run_threaded(rr: MemReranker, calls, tally: Tally) -> None:
    def one(call):
        query, docs, top_n = call
        try:
            return rr.rerank(query, docs, top_n=top_n)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=16) as pool:
        for call, outcome in zip(calls, pool.map(one, calls), strict=True):
            tally.record(call, outcome)


async def run_async(rr: MemReranker, calls, tally: Tally) -> None:
    outcomes = await asyncio.gather(
        *(rr.arerank(query, docs, top_n=top_n) for query, docs, top_n in calls), return_exceptions=True
    )
    for call, outcome in zip(calls, outcomes, strict=True):
        tally.record(call, outcome)


@pytest.mark.slow
async def test_200_concurrent_calls_with_random_faults_never_return_a_wrong_score():
    tally = Tally()
    with (
        RerankServer(api_key=KEY, fault_picker=random_fault_picker(FAULT_RATE, FAULTS, seed=1)) as memos,
        RerankServer(
            api_style="cohere", api_key=KEY, fault_picker=random_fault_picker(FAULT_RATE, FAULTS, seed=2)
        ) as cohere,
    ):
        with hosted(memos) as threaded_rr, hosted(cohere) as async_rr:
            await asyncio.to_thread(run_threaded, threaded_rr, make_calls(seed=10), tally)
            await run_async(async_rr, make_calls(seed=20), tally)
            stats = [threaded_rr.backend.stats(), async_rr.backend.stats()]
        served = memos.faults_served + cohere.faults_served
        received = len(memos.requests) + len(cohere.requests)

    faults = Counter(fault.kind for fault in served if fault.kind not in BENIGN_KINDS)
    benign = sum(1 for fault in served if fault.kind in BENIGN_KINDS)
    retries = sum(s["retries"] for s in stats)
    print(
        f"\nLOAD calls={tally.calls} ok={tally.ok} typed_errors={sum(tally.errors.values())} wrong={tally.wrong} "
        f"untyped={len(tally.untyped)} http_requests={received} faults_injected={sum(faults.values())} "
        f"benign_reshapes={benign} retries={retries}\nLOAD errors={dict(tally.errors)}\nLOAD faults={dict(faults)}"
    )
    assert tally.untyped == []
    assert tally.wrong == 0
    assert tally.calls == 2 * CALLS_PER_MODE
    assert tally.ok + sum(tally.errors.values()) == tally.calls
    assert sum(faults.values()) > 0 and retries > 0 and tally.ok > 0
    started, aborted = sum(s["requests"] for s in stats), sum(s["aborted"] for s in stats)
    assert started - aborted <= received <= started  # every request the server saw was counted; no hidden retries
