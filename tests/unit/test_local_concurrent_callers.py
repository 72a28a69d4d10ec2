"""The local backend under concurrent callers: one call on the model at a time, in arrival order; a cancelled,
timed-out or closed call stops at its next batch boundary and frees the model; ``num_threads`` sizes torch's threads
for a call and sets them back.

Every check counts forward passes and records their order; none times anything. A forward pass is held open (an
event) where a test needs a call to be "running", so that what happens meanwhile is certain.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from memreranker_core import MemReranker
from memreranker_core.errors import CallCancelledError, ConfigurationError
from memreranker_core.types import ScoreRequest
from tests.support.golden_inputs import synthetic_memories

torch = pytest.importorskip("torch")
QUERY = "What did Melanie paint?"
MANY = synthetic_memories(40, seed=31)
WAIT_S = 120  # only a bound against hanging forever; no check depends on how long anything takes


class Passes:
    """Records each backbone forward (the caller's thread name, rows, whether it runs documents against the shared
    prefix, torch's thread count) and holds the first forward of the thread named ``hold`` (``"any"``: of the first
    thread other than the test's own) open until ``release`` is set."""

    def __init__(self, reranker: MemReranker, monkeypatch: pytest.MonkeyPatch, hold: str | None = None) -> None:
        self.seen: list[tuple[str, int, bool]] = []
        self.threads: list[int] = []
        self.hold = hold
        self.held_by: str | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        inner = reranker.backend.loaded.model.model
        real_forward = inner.forward

        def forward(*args, **kwargs):
            name = threading.current_thread().name
            batch = any(kwargs.get(key) is not None for key in ("cache", "past_key_values"))
            self.seen.append((name, kwargs["input_ids"].shape[0], batch))
            self.threads.append(torch.get_num_threads())
            if self._holds(name):
                self.held_by = name
                self.holding.set()
                assert self.release.wait(WAIT_S), "the test never released the held forward"
            return real_forward(*args, **kwargs)

        monkeypatch.setattr(inner, "forward", forward)

    def _holds(self, name: str) -> bool:
        if self.holding.is_set() or self.hold is None:
            return False
        return name == self.hold or (self.hold == "any" and name != "MainThread")

    def of(self, name: str | None) -> list[tuple[str, int, bool]]:
        """The forwards of thread ``name``."""
        return [seen for seen in self.seen if seen[0] == name]


def _until(condition, what: str) -> None:
    """Wait (polling) until ``condition()``; fail with ``what`` if it never comes."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


async def _until_async(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.005)


def _named(name: str, target, *args) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run():
        try:
            box["value"] = target(*args)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread, box


@pytest.fixture
def reranker(tiny_model_path):
    """A fresh tiny reranker whose 40-memory call runs in many small batches."""
    return MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=64).warm_up()


def _planned_passes(reranker: MemReranker, documents) -> int:
    backend = reranker.backend
    return backend.plan(ScoreRequest(QUERY, tuple(documents), backend.loaded.default_instruction)).passes


async def test_a_cancelled_local_call_followed_by_another_caller_stops_at_the_next_batch_boundary(
    reranker, monkeypatch
):
    expected = reranker.score(QUERY, MANY[:1])
    passes = Passes(reranker, monkeypatch, hold="any")
    first = asyncio.create_task(reranker.arerank(QUERY, MANY))
    await _until_async(passes.holding.is_set, "the first call in its first forward pass")
    second = asyncio.create_task(reranker.ascore(QUERY, MANY[:1]))
    await _until_async(lambda: reranker.backend.waiting == 1, "the second caller waiting for the model")
    first.cancel()
    passes.release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == pytest.approx(expected, abs=2e-6)
    cancelled = passes.of(passes.held_by)
    assert len(cancelled) == 1, "the cancelled call must run no pass after the one in flight"
    assert _planned_passes(reranker, MANY) > 5, "it had many passes left"
    assert passes.seen[0][0] == passes.held_by != passes.seen[-1][0], "the held call first, the next caller last"


async def test_a_timed_out_arerank_stops_its_local_call_and_frees_the_model(reranker, monkeypatch):
    """A local call has no timeout of its own: ``asyncio.wait_for`` (or ``asyncio.timeout``) cancels it."""
    passes = Passes(reranker, monkeypatch, hold="any")
    with pytest.raises(asyncio.TimeoutError):  # TimeoutError from Python 3.11
        await asyncio.wait_for(reranker.arerank(QUERY, MANY), timeout=0.05)  # held: it cannot finish in time
    passes.release.set()
    assert len(await reranker.ascore(QUERY, MANY[:1])) == 1  # gets the model once the timed-out call stopped
    timed_out = passes.of(passes.held_by) if passes.held_by else []
    assert len(timed_out) <= 1 < _planned_passes(reranker, MANY), "no pass after the one in flight"
    assert reranker.backend.waiting == 0


def test_callers_are_served_in_arrival_order(reranker, monkeypatch):
    passes = Passes(reranker, monkeypatch, hold="caller-00")
    first, _ = _named("caller-00", reranker.score, QUERY, MANY[:2])
    _until(passes.holding.is_set, "the first caller holding the model")
    callers = [first]
    for number in range(1, 13):
        thread, _ = _named(f"caller-{number:02d}", reranker.score, QUERY, MANY[number : number + 1])
        callers.append(thread)
        _until(lambda number=number: reranker.backend.waiting == number, f"caller {number} queued")
    passes.release.set()
    for thread in callers:
        thread.join(WAIT_S)
    order = []
    for name, _, _ in passes.seen:
        if not order or order[-1] != name:
            order.append(name)
    assert order == [f"caller-{number:02d}" for number in range(13)], "each caller runs whole, in arrival order"


async def test_a_caller_cancelled_while_waiting_leaves_the_queue_and_never_runs(reranker, monkeypatch):
    passes = Passes(reranker, monkeypatch, hold="holder")
    holder, box = _named("holder", reranker.score, QUERY, MANY[:4])
    await _until_async(passes.holding.is_set, "the holder's batch")
    waiter = asyncio.create_task(reranker.ascore(QUERY, MANY[4:6]))
    await _until_async(lambda: reranker.backend.waiting == 1, "the waiter queued")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await _until_async(lambda: reranker.backend.waiting == 0, "the cancelled waiter gone from the queue")
    passes.release.set()
    holder.join(WAIT_S)
    assert len(box["value"]) == 4
    assert {name for name, _, _ in passes.seen} == {"holder"}, "the cancelled waiter must never run a pass"


def test_close_stops_the_running_call_at_its_next_batch_and_every_waiting_call(reranker, monkeypatch):
    passes = Passes(reranker, monkeypatch, hold="running")
    running, running_box = _named("running", reranker.score, QUERY, MANY)
    _until(passes.holding.is_set, "the running call's batch")
    waiting, waiting_box = _named("waiting", reranker.score, QUERY, MANY[:1])
    _until(lambda: reranker.backend.waiting == 1, "the second call queued")
    closer, closer_box = _named("closer", reranker.close)
    waiting.join(WAIT_S)
    assert isinstance(waiting_box.get("error"), CallCancelledError), "a waiting call ends when the reranker closes"
    assert closer.is_alive(), "close waits for the running call to stop"
    passes.release.set()
    running.join(WAIT_S)
    closer.join(WAIT_S)
    assert isinstance(running_box.get("error"), CallCancelledError) and "closed" in str(running_box["error"])
    assert len(passes.of("running")) == 1 < _planned_passes(reranker, MANY), "no pass after the one in flight"
    assert "error" not in closer_box and {name for name, _, _ in passes.seen} == {"running"}
    assert len(reranker.score(QUERY, MANY[:2])) == 2, "a closed reranker loads the model again on its next call"


@pytest.fixture
def two_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def test_num_threads_sizes_torch_threads_for_the_call_and_sets_them_back(
    tiny_model_path, monkeypatch, two_torch_threads
):
    sized = MemReranker(model=str(tiny_model_path), device="cpu", num_threads=1).warm_up()
    passes = Passes(sized, monkeypatch)
    sized.score(QUERY, MANY[:3])
    assert passes.threads and set(passes.threads) == {1}
    assert torch.get_num_threads() == two_torch_threads, "the setting in force before comes back"
    assert sized.settings()["num_threads"] == 1 and sized.describe()["num_threads"] == 1


def test_without_num_threads_the_torch_setting_is_left_alone(tiny_model_path, monkeypatch, two_torch_threads):
    plain = MemReranker(model=str(tiny_model_path), device="cpu").warm_up()
    passes = Passes(plain, monkeypatch)
    plain.score(QUERY, MANY[:3])
    assert set(passes.threads) == {two_torch_threads}
    assert "num_threads" not in plain.settings() and torch.get_num_threads() == two_torch_threads


def test_num_threads_must_be_a_positive_whole_number():
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ConfigurationError, match="num_threads"):
            MemReranker(model="unused", num_threads=bad)
