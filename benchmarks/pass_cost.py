"""Fit the fixed cost of one forward pass of the local backend, in tokens: the figure ``PASS_OVERHEAD`` holds.

The batch planner (``memreranker_core.backends.local.plan_batches``) trades padding against passes, pricing one more
pass at ``default_pass_overhead(device, config)`` tokens. This measures that price instead of estimating it: for
each model shape it times our own document passes (real shared-prefix cache, right-padded rows) over a grid of batch
shapes, fits ``seconds = a + b * tokens + c * attended`` by least squares, and reports ``a / b``, the tokens one
more pass costs. With two or more shapes it also solves ``overhead = tokens + flops_per_layer /
layer_flops_per_token(config)`` for the ``(tokens, flops_per_layer)`` pair that ``PASS_OVERHEAD`` keeps per device
type (weights streamed once per pass; kernel launches and Python per layer).

Usage (from the repository root)::

    python -m benchmarks.pass_cost --device cpu --threads 1 --shapes tiny,0.6b --layers 2
    python -m benchmarks.pass_cost --device cuda --shapes 0.6b,4b          # on the GPU machine, bf16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/pass_cost.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.checkpoints import benchmark_checkpoint
from memreranker_core.backends.local import default_pass_overhead, layer_flops_per_token, run_batch, run_prefix

PREFIX_TOKENS = 80  # about a memory query's shared prefix (system prompt, instruction, query)
WIDTHS = (8, 32, 128, 512)


@dataclass(frozen=True)
class PassCost:
    """``seconds = fixed + per_token * tokens + per_attended * attended`` for one shape on one device."""

    fixed: float
    per_token: float
    per_attended: float

    @property
    def overhead_tokens(self) -> float:
        """How many tokens' worth of work one more forward pass costs."""
        return self.fixed / self.per_token


def fit_pass_cost(samples: Sequence[tuple[int, int, int, float]]) -> PassCost:
    """Least-squares fit, in relative error, over ``(rows, width, prefix, seconds)`` samples (one batch shape each).

    Example:
        >>> cost = fit_pass_cost([(r, w, 80, 0.002 + 1e-5 * r * w) for r in (1, 4, 16) for w in (8, 64, 256)])
        >>> round(cost.overhead_tokens)
        200
    """
    import numpy

    design = numpy.array(
        [[1.0, rows * width, rows * width * (prefix + width / 2)] for rows, width, prefix, _ in samples]
    )
    seconds = numpy.array([sample[3] for sample in samples])
    # relative errors: the small batches, where the fixed cost shows, weigh as much as the big ones
    fixed, per_token, per_attended = numpy.linalg.lstsq(design / seconds[:, None], seconds / seconds, rcond=None)[0]
    return PassCost(float(fixed), float(per_token), float(per_attended))


def solve_overhead_constants(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """``(tokens, flops_per_layer)`` from ``(layer_flops_per_token, overhead_tokens)`` of two or more shapes.

    Example:
        >>> solve_overhead_constants([(1e6, 39 + 1.2e7 / 1e6), (1e8, 39 + 1.2e7 / 1e8)])
        (39.0, 12000000.0)
    """
    import numpy

    design = numpy.array([[1.0, 1.0 / layer_flops] for layer_flops, _ in points])
    overheads = numpy.array([overhead for _, overhead in points])
    tokens, flops_per_layer = numpy.linalg.lstsq(design, overheads, rcond=None)[0]
    return round(float(tokens), 1), round(float(flops_per_layer), -3)


def measure_shape(args: argparse.Namespace, shape: str) -> tuple[PassCost, list[tuple[int, int, int, float]], object]:
    """Time our document passes of one shape over the grid of batch shapes; return the fit, samples and config."""
    from memreranker_core import MemReranker

    path = benchmark_checkpoint(shape, layers=args.layers, model_dir=args.model_dir)
    device = torch.device(args.device)
    dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    loaded = MemReranker(model=str(path), device=args.device, dtype=dtype).warm_up().backend.loaded
    generator = torch.Generator().manual_seed(0)

    def tokens(count: int) -> list[int]:
        return torch.randint(1000, 100_000, (count,), generator=generator).tolist()

    samples: list[tuple[int, int, int, float]] = []
    with torch.inference_mode():
        prefix = run_prefix(loaded, tokens(PREFIX_TOKENS))
        for width in WIDTHS:
            rows = 1
            while rows * width <= args.max_tokens:
                batch = [tokens(width) for _ in range(rows)]
                timings = []
                for _ in range(args.iters + 1):  # the first call warms up
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    start = time.perf_counter()
                    run_batch(loaded, batch, prefix)  # reads its scores back: synchronous
                    timings.append(time.perf_counter() - start)
                samples.append((rows, width, PREFIX_TOKENS, statistics.median(timings[1:])))
                rows *= 2
    return fit_pass_cost(samples), samples, loaded.model.config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shapes", default="0.6b,4b")
    parser.add_argument("--layers", type=int, default=None, help="fewer layers than each shape's (CPU runs)")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--max-tokens", type=int, default=None, help="largest batch (default 32768 GPU, 2048 CPU)")
    parser.add_argument("--iters", type=int, default=None, help="timed passes per batch shape (default 10 GPU, 3 CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--model-dir", default=None, help="where the random checkpoints are built (cached)")
    args = parser.parse_args(argv)
    on_gpu = torch.device(args.device).type == "cuda"
    args.max_tokens = args.max_tokens or (32768 if on_gpu else 2048)
    args.iters = args.iters or (10 if on_gpu else 3)
    if args.threads:
        torch.set_num_threads(args.threads)

    print("| shape | layers | fixed ms per pass | us per token | pass overhead (tokens) | default now (tokens) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    points = []
    for shape in args.shapes.split(","):
        cost, _, config = measure_shape(args, shape)
        layer_flops = layer_flops_per_token(config)
        points.append((layer_flops, cost.overhead_tokens))
        now = default_pass_overhead(torch.device(args.device), config)
        print(
            f"| {shape} | {config.num_hidden_layers} | {cost.fixed * 1e3:.2f} | {cost.per_token * 1e6:.2f} | "
            f"{cost.overhead_tokens:.0f} | {now} |",
            flush=True,
        )
    if len(points) > 1:
        tokens, flops_per_layer = solve_overhead_constants(points)
        print(f"\nPASS_OVERHEAD[{torch.device(args.device).type!r}] = ({tokens:.0f}, {flops_per_layer:.2g})")
    print(f"command: python -m benchmarks.pass_cost {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
