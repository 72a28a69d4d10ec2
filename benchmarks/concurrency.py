"""Concurrency benchmark: throughput and latency at 1, 10 and 100 concurrent callers, sync threads and asyncio.

Hosted rows run against a loopback ``/rerank`` service (a subprocess of this script, answering every request after
a fixed delay, 200 ms by default) at the reranker's default settings; local rows run the local backend on a random
checkpoint (``tiny`` and the 0.6B architecture with a few layers). Each caller makes ``--rounds`` calls one after the
other; a call is one query against ``--docs`` memories (one request to the service). Also measured: the client's
peak thread count during the run, and how long ``close()`` and task cancellation take to end a call waiting on a
service that never answers.

The target (issue 20): 100 concurrent async hosted calls against a 200 ms service within 1.5x of the ideal
(``rounds x delay``) at default settings, with a client thread count that does not grow with the number of calls.

Usage (from the repository root)::

    python -m benchmarks.concurrency --cold                  # hosted and local, 1/10/100 callers
    python -m benchmarks.concurrency --only hosted --delay 0.2
    python -m benchmarks.concurrency --url http://router:8000 --api-style vllm   # a real service (capacity)

Results: a markdown table on stdout and ``benchmarks/runs/concurrency.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/concurrency.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memreranker_core import MemReranker

logger = logging.getLogger(__name__)

RUNS_DIR = Path(__file__).resolve().parent / "runs"
CALLERS = (1, 10, 100)
WORDS = "Caroline Melanie went support group painted lake pottery class hiking week dog park city rain".split()


@dataclass(frozen=True)
class Row:
    """One measured configuration."""

    backend: str
    setup: str
    mode: str
    callers: int
    calls: int
    wall_s: float
    throughput: float
    p50_ms: float
    p95_ms: float
    ideal_s: float | None
    peak_threads: int
    base_threads: int

    @property
    def vs_ideal(self) -> float | None:
        return None if not self.ideal_s else self.wall_s / self.ideal_s


# ----------------------------------------------------------------- the loopback service (a subprocess)
async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, silent: bool) -> None:
    """One keep-alive connection: each POST answered after ``delay`` s, in the Memos dialect (or never)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = json.loads(await reader.readexactly(length) or b"{}")
            await asyncio.sleep(3600 if silent else delay)
            documents = body.get("documents") or []
            results = [{"index": i, "relevance_score": (hash(text) % 1000) / 1000} for i, text in enumerate(documents)]
            payload = json.dumps({"code": 0, "message": "ok", "data": {"results": results}}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def serve(port: int, delay: float, silent: bool) -> None:
    """Serve the Memos dialect on ``127.0.0.1:port`` with asyncio (one thread, as uvicorn would): every answer after
    ``delay`` s, or never if ``silent``."""

    async def main() -> None:
        server = await asyncio.start_server(
            lambda reader, writer: _answer(reader, writer, delay, silent), "127.0.0.1", port, backlog=1024
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Service:
    """The loopback service in a subprocess of its own (so that it takes no GIL from the client measured)."""

    def __init__(self, delay: float, silent: bool = False) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "benchmarks.concurrency", "--serve", str(self.port), "--delay", str(delay)]
        self.process = subprocess.Popen(command + (["--silent"] if silent else []), cwd=Path(__file__).parent.parent)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the loopback service did not start") from None
                time.sleep(0.05)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/openmem/v1"

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.kill()
        self.process.wait()


# ----------------------------------------------------------------- measuring
class ThreadSampler:
    """The process's peak thread count while the block runs."""

    def __enter__(self) -> ThreadSampler:
        self.base = threading.active_count()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, threading.active_count() - 1)  # less the sampler itself

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def memories(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(WORDS)} {' '.join(rng.sample(WORDS, 6))} (memory {n})" for n in range(count)]


def measure(
    rr: MemReranker, backend: str, setup: str, mode: str, callers: int, rounds: int, docs: int, ideal: float | None
) -> Row:
    """``callers`` concurrent callers (threads or tasks), each making ``rounds`` calls one after the other."""
    batches = [memories(docs, seed) for seed in range(callers)]
    latencies: list[float] = []

    def one_sync(n: int) -> None:
        for _ in range(rounds):
            start = time.perf_counter()
            rr.rerank(f"Where did Caroline go? #{n}", batches[n])
            latencies.append(time.perf_counter() - start)

    async def one_async(n: int) -> None:
        for _ in range(rounds):
            start = time.perf_counter()
            await rr.arerank(f"Where did Caroline go? #{n}", batches[n])
            latencies.append(time.perf_counter() - start)

    with ThreadSampler() as threads:
        start = time.perf_counter()
        if mode == "asyncio":

            async def everyone() -> None:
                await asyncio.gather(*(one_async(n) for n in range(callers)))

            asyncio.run(everyone())
        else:
            with ThreadPoolExecutor(callers) as pool:
                list(pool.map(one_sync, range(callers)))
        wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return Row(
        backend=backend,
        setup=setup,
        mode=mode,
        callers=callers,
        calls=len(latencies),
        wall_s=wall,
        throughput=len(latencies) / wall,
        p50_ms=1000 * statistics.median(ordered),
        p95_ms=1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        ideal_s=ideal,
        peak_threads=threads.peak,
        base_threads=threads.base,
    )


def stop_latency(how: str, make: Callable[[str], MemReranker]) -> float:
    """Seconds from ``close()`` (sync caller) or ``task.cancel()`` (async caller) to the call's end, for a call
    waiting on a service that never answers."""
    with Service(0.0, silent=True) as silent:
        rr = make(silent.base_url)
        if how == "close":
            ended: list[float] = []

            def call() -> None:
                try:
                    rr.rerank("q?", ["a memory"])
                except Exception:
                    ended.append(time.perf_counter())

            worker = threading.Thread(target=call)
            worker.start()
            time.sleep(0.5)
            start = time.perf_counter()
            rr.close()
            worker.join()
            return ended[0] - start

        async def cancelled() -> float:
            task = asyncio.ensure_future(rr.arerank("q?", ["a memory"]))
            await asyncio.sleep(0.5)
            start = time.perf_counter()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            return time.perf_counter() - start

        took = asyncio.run(cancelled())
        rr.close()
        return took


# ----------------------------------------------------------------- the runs
def hosted_rows(args: argparse.Namespace) -> tuple[list[Row], dict[str, float]]:
    rows = []
    options = {"api_key": os.environ.get("MEMRERANKER_BENCH_KEY", "bench-key-0000"), "api_style": args.api_style}

    def make(url: str) -> MemReranker:
        return MemReranker(backend="hosted", base_url=url, **options)

    service = Service(args.delay) if args.url is None else None
    url = service.base_url if service is not None else args.url
    setup = f"loopback service, {args.delay * 1000:g} ms" if service is not None else f"service at {args.url}"
    ideal = args.rounds * args.delay if service is not None else None
    try:
        for mode in ("asyncio", "threads"):
            for callers in args.callers:
                with make(url) as rr:
                    rr.rerank("warm up?", ["a memory"])  # the loop thread starts outside the timing
                    if args.cold:  # one round on new connections: each caller's first call opens one
                        cold = None if ideal is None else args.delay
                        rows.append(measure(rr, "hosted", setup + ", cold", mode, callers, 1, args.docs, cold))
                    rows.append(measure(rr, "hosted", setup, mode, callers, args.rounds, args.docs, ideal))
                    logger.info("%s", rows[-1])
    finally:
        if service is not None:
            service.__exit__()
    stops = {how: stop_latency(how, make) for how in ("close", "cancel")} if args.url is None else {}
    return rows, stops


def local_rows(args: argparse.Namespace) -> list[Row]:
    from benchmarks.checkpoints import benchmark_checkpoint

    rows = []
    for shape, layers in (("tiny", None), ("0.6b", args.layers)):
        path = benchmark_checkpoint(shape, layers=layers)
        setup = f"{shape}" + (f", {layers} layers" if layers else "") + f", {args.device}"
        with MemReranker(model=str(path), device=args.device) as rr:
            rr.rerank("warm up?", memories(args.docs, 999))
            for mode in ("asyncio", "threads"):
                for callers in args.callers:
                    rounds = 1 if callers > 1 else args.rounds
                    rows.append(measure(rr, "local", setup, mode, callers, rounds, args.docs, None))
                    logger.info("%s", rows[-1])
    return rows


def markdown(rows: list[Row], stops: dict[str, float], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| backend | setup | mode | callers | calls | wall s | calls/s | p50 ms | p95 ms | x ideal | threads |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        ideal = f"{row.vs_ideal:.2f}" if row.vs_ideal is not None else "-"
        lines.append(
            f"| {row.backend} | {row.setup} | {row.mode} | {row.callers} | {row.calls} | {row.wall_s:.2f} | "
            f"{row.throughput:.1f} | {row.p50_ms:.0f} | {row.p95_ms:.0f} | {ideal} | "
            f"{row.base_threads} -> {row.peak_threads} |"
        )
    if stops:
        lines += ["", "| a call waiting on a silent service, ended by | ms to end |", "| --- | ---: |"]
        lines += [f"| {how}() | {1000 * seconds:.0f} |" for how, seconds in stops.items()]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["hosted", "local"], default=None)
    parser.add_argument("--callers", default=",".join(map(str, CALLERS)), help="comma-separated caller counts")
    parser.add_argument(
        "--rounds", type=int, default=10, help="calls per caller, one after the other (the first opens connections)"
    )
    parser.add_argument("--cold", action="store_true", help="also one round on new connections (hosted)")
    parser.add_argument("--docs", type=int, default=10, help="memories per call")
    parser.add_argument("--delay", type=float, default=0.2, help="the loopback service's answer delay, seconds")
    parser.add_argument("--url", default=None, help="measure a real service instead of the loopback one")
    parser.add_argument("--api-style", default="memos")
    parser.add_argument("--layers", type=int, default=4, help="layers of the 0.6B-architecture local checkpoint")
    parser.add_argument("--device", default="cpu", help="the local rows' device (cuda on a GPU machine)")
    parser.add_argument("--out", default=str(RUNS_DIR / "concurrency.json"))
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--silent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.callers = [int(value) for value in str(args.callers).split(",")]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.delay, args.silent)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    rows: list[Row] = []
    stops: dict[str, float] = {}
    if args.only in (None, "hosted"):
        hosted, stops = hosted_rows(args)
        rows += hosted
    if args.only in (None, "local") and args.url is None:
        rows += local_rows(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"machine": machine, "rows": [asdict(row) for row in rows], "stops_s": stops}, indent=2) + "\n"
    )
    sys.stdout.write(markdown(rows, stops, machine) + "\n")


if __name__ == "__main__":
    main()
