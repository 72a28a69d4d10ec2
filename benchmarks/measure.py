"""Timing, FLOP and memory measurement for the benchmark harness."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from memreranker_core.backends.local import layer_flops_per_token

#: Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), by a substring of the CUDA device name.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def bf16_peak_tflops(device: torch.device) -> float | None:
    """The device's nominal dense bf16 peak, or None (CPU, unknown GPU): MFU is then reported as n/a."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in BF16_PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


@dataclass(frozen=True)
class FlopModel:
    """Backbone FLOPs of a Qwen3 config: linear layers plus attention scores (no vocabulary head)."""

    linear_per_token: float
    attention_per_context: float  # FLOPs per query token per attended position

    @classmethod
    def from_config(cls, config: Any) -> FlopModel:
        heads, layers = config.num_attention_heads, config.num_hidden_layers
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(
            linear_per_token=layer_flops_per_token(config) * layers,
            attention_per_context=4.0 * layers * heads * head_dim,
        )

    def sequence(self, length: int, offset: int = 0) -> float:
        """FLOPs of ``length`` tokens run after ``offset`` cached ones (causal attention)."""
        attended = length * offset + length * (length + 1) / 2
        return self.linear_per_token * length + self.attention_per_context * attended


class PeakMemory:
    """Peak memory of a block: CUDA ``max_memory_allocated``, or on CPU the RSS peak sampled every 5 ms."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0
        self.baseline_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline_bytes = torch.cuda.memory_allocated(self.device)
        else:
            self.baseline_bytes = self.peak_bytes = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_bytes = max(self.peak_bytes, _rss_bytes())

    def __exit__(self, *exc_info: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak_bytes = max(self.peak_bytes, _rss_bytes())


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Timing:
    """Per-call latencies of one system on one workload, and the scores of its last call."""

    latencies: tuple[float, ...]
    scores: tuple[float, ...]
    peak_bytes: int
    baseline_bytes: int

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered) + 0.5) - 1))]


def time_calls(
    call: Callable[[], Sequence[float]],
    device: torch.device,
    *,
    iters: int,
    warmup: int = 1,
    max_seconds: float | None = None,
) -> Timing:
    """Run ``call`` ``warmup`` times untimed, then ``iters`` times timed (synchronizing CUDA around each).

    With ``max_seconds``, no further timed call starts once the warm-up and the timed calls so far have taken that
    long; at least one call is always timed. ``Timing.latencies`` tells how many ran. This keeps the slow peers'
    large workloads (the card recipe on 10,000 documents of a 4B model) inside a GPU lease's per-command limit.
    """
    started = time.perf_counter()
    for _ in range(warmup):
        call()
    latencies: list[float] = []
    scores: Sequence[float] = ()
    with PeakMemory(device) as memory:
        for _ in range(iters):
            if latencies and max_seconds is not None and time.perf_counter() - started >= max_seconds:
                break
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            scores = call()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            latencies.append(time.perf_counter() - start)
    return Timing(tuple(latencies), tuple(float(s) for s in scores), memory.peak_bytes, memory.baseline_bytes)
