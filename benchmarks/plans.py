"""What the local backend runs for W1-W5 on a GPU's defaults: forward passes and padded tokens, before and now.

Planning needs only the tokenizer, not a GPU, so these figures are exact for the CUDA defaults (the token budget of
an 80 GiB GPU and the estimated per-pass cost of each architecture,
``memreranker_core.backends.local.PASS_OVERHEAD``) wherever this runs. "before" is the planner up to this change:
the prefix always shared, one greedy pass over the documents sorted longest first. Time itself is not measured here
(see ``benchmarks.run``).

Usage::

    python -m benchmarks.plans            # markdown tables for the 0.6b and 4b shapes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):  # run as a script: python benchmarks/plans.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.checkpoints import benchmark_checkpoint
from benchmarks.workloads import build_workloads
from memreranker_core import MemReranker
from memreranker_core.backends.local import (
    DEFAULT_BATCH_TOKENS,
    TokenBudget,
    default_pass_overhead,
    fill_batches,
    plan,
    plan_cost,
)
from memreranker_core.testing.random_model import MODEL_SHAPES
from memreranker_core.types import ScoreRequest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="0.6b,4b")
    parser.add_argument("--batch-tokens", type=int, default=DEFAULT_BATCH_TOKENS["cuda"])
    parser.add_argument("--w5-docs", type=int, default=10_000)
    args = parser.parse_args(argv)

    path = benchmark_checkpoint("tiny")
    backend = MemReranker(model=str(path), device="cpu").backend  # only its tokenizer and prompt are used
    workloads = build_workloads(backend.loaded.tokenizer, w5_docs=args.w5_docs)
    for shape in args.shapes.split(","):
        overhead = default_pass_overhead(SimpleNamespace(type="cuda"), SimpleNamespace(**MODEL_SHAPES[shape]))
        budget = TokenBudget(args.batch_tokens, pass_overhead=overhead)
        print(f"\n{shape}: batch_tokens={budget.value}, one pass costs as much as {overhead} tokens (CUDA)\n")
        print("| workload | docs | prompt tokens | before: passes, tokens run | now: passes, tokens run | cost ratio |")
        print("| --- | ---: | ---: | --- | --- | ---: |")
        for workload in workloads:
            call = backend.prepare(ScoreRequest(workload.query, workload.documents, backend.loaded.default_instruction))
            prompts = sum(len(call.pair_ids(i)) for i in range(len(call.sequences)))
            lengths = [len(seq) for seq in call.sequences]
            order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
            old = fill_batches(order, lengths, budget.value)
            old_tokens = plan_cost(lengths, old, 0) + len(call.shared)
            now = plan(call, budget)
            ratio = (old_tokens + overhead * (len(old) + 1)) / (now.padded_tokens + overhead * now.passes)
            shared = "shared prefix" if now.shares_prefix else "whole prompts"
            print(
                f"| {workload.name} | {len(lengths):,} | {prompts:,} | {len(old) + 1}, {old_tokens:,} | "
                f"{now.passes}, {now.padded_tokens:,} ({shared}) | {ratio:.2f}x |"
            )
    print(f"\ncommand: python -m benchmarks.plans {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
