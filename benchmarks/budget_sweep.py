"""Sweep our token budget (``batch_tokens``) per workload, to tune the per-device default.

Usage::

    python -m benchmarks.budget_sweep --device cpu --shape 0.6b --layers 2 --budgets 512,1024,2048,4096,8192
"""

from __future__ import annotations

import argparse
import sys

import torch

from benchmarks.checkpoints import benchmark_checkpoint
from benchmarks.measure import time_calls
from benchmarks.workloads import build_workloads


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shape", default="tiny", choices=["tiny", "0.6b", "4b"])
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--budgets", default="512,1024,2048,4096,8192,32768")
    parser.add_argument("--workloads", default="W2,W5")
    parser.add_argument("--docs-scale", type=float, default=1.0)
    parser.add_argument("--w5-docs", type=int, default=1000)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--model-dir", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from memreranker_core import MemReranker

    device = torch.device(args.device)
    dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    path = benchmark_checkpoint(args.shape, layers=args.layers, model_dir=args.model_dir)
    wanted = {name.strip() for name in args.workloads.split(",")}
    reranker = MemReranker(model=str(path), device=args.device, dtype=dtype).warm_up()
    workloads = build_workloads(
        reranker.backend.loaded.tokenizer,
        w5_docs=args.w5_docs,
        scale=args.docs_scale,
        skip=frozenset({"W1", "W2", "W3", "W4", "W5"} - wanted),
    )
    print(f"| budget | {' | '.join(f'{w.name} p50 ms ({len(w.documents)} docs)' for w in workloads)} |")
    print(f"| ---: | {' | '.join('---:' for _ in workloads)} |")
    for budget in (int(value) for value in args.budgets.split(",")):
        reranker.backend.set_budget(budget)
        cells = []
        for workload in workloads:
            timing = time_calls(lambda w=workload: reranker.score(w.query, w.documents), device, iters=args.iters)
            cells.append(f"{timing.p50 * 1e3:.0f}")
        print(f"| {budget} | {' | '.join(cells)} |", flush=True)
    print(f"command: python -m benchmarks.budget_sweep {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
