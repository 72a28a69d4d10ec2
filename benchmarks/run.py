"""Speed benchmark: our local backend vs sentence-transformers ``CrossEncoder`` vs the model card's recipe.

All three run in one process on one model object (the ``CrossEncoder``'s Qwen3ForCausalLM, random weights with a
real MemReranker architecture) and on identical inputs; the prompt tokens of every pair are checked to be the same
for all three before anything is timed.

Usage (from the repository root)::

    python -m benchmarks.run --device cpu --shape tiny
    python -m benchmarks.run --device cpu --shape 0.6b --layers 2 --w5-docs 1000
    python -m benchmarks.run --device cuda --shape 4b          # GPU: bf16, float32 reference, full W5

Results go to ``benchmarks/runs/<tag>.json`` / ``.md`` / ``.png`` (tag: device-shape; git-ignored, so a re-run never
overwrites the committed results in ``benchmarks/results/``: pass ``--out-dir benchmarks/results`` to replace them).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.checkpoints import benchmark_checkpoint
from benchmarks.measure import FlopModel, Timing, bf16_peak_tflops, time_calls
from benchmarks.report import chart_title, render_chart, render_markdown
from benchmarks.workloads import Workload, build_workloads
from memreranker_core.testing.card_recipe import card_prompt_ids, card_scores

RESULTS_DIR = Path(__file__).resolve().parent / "runs"
ST_DEFAULT_BATCH = 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shape", default="tiny", choices=["tiny", "0.6b", "4b"])
    parser.add_argument("--layers", type=int, default=None, help="fewer layers than the shape's (CPU runs)")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--iters", type=int, default=None, help="timed calls per system (default 10 GPU, 3 CPU)")
    parser.add_argument("--w5-docs", type=int, default=None, help="W5 size (default 10,000 GPU, 1,000 CPU)")
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5")
    parser.add_argument("--docs-scale", type=float, default=1.0, help="shrink W2/W3 document counts (slow CPUs)")
    parser.add_argument("--card-iters", type=int, default=None, help="timed calls of the card recipe (default iters)")
    parser.add_argument("--st-batch-sizes", default=None, help="ST sweep (default 8,16,32,64,128 GPU; 4,16,64 CPU)")
    parser.add_argument(
        "--card-batch-tokens",
        type=int,
        default=None,
        help="padded tokens per batch of the card recipe, whose full-vocabulary logits at every position need "
        "tokens x 151,936 floats (default 32768 GPU, 2048 CPU; at most 64 pairs)",
    )
    parser.add_argument("--batch-tokens", type=int, default=None, help="our token budget (default: per device)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak for MFU (default: the GPU's bf16)")
    parser.add_argument("--model-dir", default=None, help="where the random checkpoint is built (cached)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="per system and workload: start no further timed call after this many seconds (at least one call "
        "is timed; the report gives each system's count). Keeps the 4B GPU run inside a 10-minute command",
    )
    parser.add_argument("--tag", default=None, help="results file name (default: device-shape[-Llayers])")
    parser.add_argument("--out-dir", default=str(RESULTS_DIR), help="where results go (default benchmarks/runs)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other workloads of an earlier run with the same tag, device, shape and dtype (a run split "
        "over several commands, e.g. W1-W4 then W5)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    args.command = "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv)
    return args


def build_checkpoint(args: argparse.Namespace) -> Path:
    """The random checkpoint of ``args.shape`` (``--layers``, ``--model-dir``), built once (``checkpoints``)."""
    return benchmark_checkpoint(args.shape, layers=args.layers, model_dir=args.model_dir)


def pair_tokens_card(tokenizer: Any, workload: Workload) -> list[list[int]]:
    """The card recipe's prompt ids for each pair (``memreranker_core.testing.card_recipe``)."""
    return card_prompt_ids(tokenizer, [(workload.query, doc) for doc in workload.documents])


def pair_tokens_st(encoder: Any, workload: Workload, chunk: int = 256) -> list[list[int]]:
    """The prompt ids sentence-transformers builds for each pair (real tokens only, padding removed)."""
    prompt = encoder.prompts.get(encoder.default_prompt_name or "")
    pairs = [(workload.query, doc) for doc in workload.documents]
    rows: list[list[int]] = []
    for start in range(0, len(pairs), chunk):
        features = encoder.preprocess(pairs[start : start + chunk], prompt=prompt)
        for ids, mask in zip(features["input_ids"].tolist(), features["attention_mask"].tolist(), strict=True):
            rows.append([token for token, keep in zip(ids, mask, strict=True) if keep])
    return rows


def card_batch_size(card_ids: list[list[int]], card_tokens: int) -> int:
    """Pairs per padded batch of the card recipe so that ``pairs x longest`` stays within ``card_tokens``."""
    return max(1, min(64, card_tokens // max(map(len, card_ids))))


def run(args: argparse.Namespace, on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the workloads; ``on_result(report so far)`` after each one, so an interrupted run keeps what it did."""
    from sentence_transformers import CrossEncoder

    from memreranker_core import MemReranker
    from memreranker_core.types import ScoreRequest

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    dtype = getattr(torch, args.dtype or ("bfloat16" if on_gpu else "float32"))
    iters = args.iters or (10 if on_gpu else 3)
    w5_docs = args.w5_docs or (10_000 if on_gpu else 1_000)
    sweep = [int(v) for v in (args.st_batch_sizes or ("8,16,32,64,128" if on_gpu else "4,16,64")).split(",")]
    peak = args.peak_tflops or bf16_peak_tflops(device)
    card_tokens = args.card_batch_tokens or (32768 if on_gpu else 2048)
    wanted = {name.strip() for name in args.workloads.split(",")}

    path = build_checkpoint(args)
    encoder = CrossEncoder(str(path), device=str(device), local_files_only=True, model_kwargs={"dtype": torch.float32})
    encoder.model.eval()
    tokenizer = encoder.tokenizer
    flops = FlopModel.from_config(encoder.model.config)
    workloads = build_workloads(
        tokenizer, w5_docs=w5_docs, scale=args.docs_scale, skip=frozenset({"W1", "W2", "W3", "W4", "W5"} - wanted)
    )
    if "W1" in wanted and not any(w.name == "W1" for w in workloads):
        print("W1 skipped: ../shared/data/locomo10.json is absent", file=sys.stderr)

    # float32 reference (the card's recipe) before the model is cast to the benchmark dtype
    references: dict[str, list[float]] = {}
    if dtype != torch.float32:
        for workload in workloads:
            pairs = [(workload.query, doc) for doc in workload.documents]
            batch = card_batch_size(pair_tokens_card(tokenizer, workload), card_tokens)
            references[workload.name] = card_scores(encoder.model, tokenizer, pairs, batch_size=batch)
        encoder.model.to(dtype)

    ours = MemReranker(model=encoder, batch_tokens=args.batch_tokens).warm_up()
    sigmoid = torch.nn.Sigmoid()
    results: list[dict[str, Any]] = []
    report = {"environment": environment(args, device, dtype, iters, w5_docs, peak, path, encoder), "results": results}
    for workload in workloads:
        started = time.perf_counter()
        pairs = [(workload.query, doc) for doc in workload.documents]
        call_plan = ours.backend.plan(
            ScoreRequest(workload.query, workload.documents, ours.backend.loaded.default_instruction)
        )
        call = call_plan.call
        ours_ids = [call.pair_ids(i) for i in range(len(pairs))]
        card_ids = pair_tokens_card(tokenizer, workload)
        st_ids = pair_tokens_st(encoder, workload)
        pair_tokens = sum(map(len, card_ids))
        tokens = {
            "pairs": len(pairs),
            "pair_tokens": pair_tokens,
            "mean_pair_tokens": pair_tokens / len(pairs),
            "shared_prefix_tokens": len(call.shared),
            "ours_equals_card": ours_ids == card_ids,
            "st_equals_card": st_ids == card_ids,
            "st_token_count_mismatches": sum(len(a) != len(b) for a, b in zip(st_ids, card_ids, strict=True)),
            "ours_shares_prefix": call_plan.shares_prefix,
            "ours_passes": call_plan.passes,
            "ours_tokens_run": call_plan.padded_tokens,
        }
        work = {  # useful FLOPs: what each system must compute, padding aside
            "ours": (flops.sequence(len(call.shared)) if call_plan.shares_prefix else 0)
            + sum(flops.sequence(len(s), call_plan.offset) for s in call_plan.sequences),
            "full": sum(flops.sequence(len(ids)) for ids in card_ids),
        }

        systems: dict[str, Timing] = {}
        cap = args.max_seconds
        systems["ours"] = time_calls(
            lambda w=workload: ours.score(w.query, w.documents), device, iters=iters, max_seconds=cap
        )

        def st_call(batch_size: int, pairs=pairs):
            return lambda: encoder.predict(pairs, batch_size=batch_size, activation_fn=sigmoid, show_progress_bar=False)

        systems["st_default"] = time_calls(st_call(ST_DEFAULT_BATCH), device, iters=iters, max_seconds=cap)
        sweep_p50 = {ST_DEFAULT_BATCH: systems["st_default"].p50}
        sweep_warmup = 0 if systems["st_default"].p50 > 1.0 else 1  # a warm-up call matters only for short calls
        if len(pairs) > 1:
            for batch_size in sweep:
                if batch_size != ST_DEFAULT_BATCH and batch_size < 2 * len(pairs):
                    timing = time_calls(st_call(batch_size), device, iters=1, warmup=sweep_warmup)
                    sweep_p50[batch_size] = timing.p50
        best_batch = min(sweep_p50, key=sweep_p50.get)
        systems["st_best"] = (
            systems["st_default"]
            if best_batch == ST_DEFAULT_BATCH
            else time_calls(st_call(best_batch), device, iters=iters, max_seconds=cap)
        )
        card_batch = card_batch_size(card_ids, card_tokens)
        systems["card"] = time_calls(
            lambda pairs=pairs, size=card_batch: card_scores(
                encoder.model, tokenizer, pairs, batch_size=size, full_logits=True
            ),
            device,
            iters=args.card_iters or iters,
            warmup=0 if args.card_iters else 1,
            max_seconds=cap,
        )
        reference = references.get(workload.name) or list(systems["card"].scores)

        rows = {}
        for name, timing in systems.items():
            flop = work["ours"] if name == "ours" else work["full"]
            rows[name] = {
                "p50_ms": timing.p50 * 1e3,
                "p95_ms": timing.p95 * 1e3,
                "pairs_per_s": len(pairs) / timing.p50,
                "tokens_per_s": pair_tokens / timing.p50,
                "tflop_per_call": flop / 1e12,
                "mfu": (flop / timing.p50 / (peak * 1e12)) if peak else None,
                "peak_memory_mib": timing.peak_bytes / 2**20,
                "memory_over_baseline_mib": (timing.peak_bytes - timing.baseline_bytes) / 2**20,
                "max_abs_diff_vs_reference": max(abs(a - b) for a, b in zip(timing.scores, reference, strict=True)),
                "iters": len(timing.latencies),
            }
        rows["st_best"]["batch_size"] = best_batch
        rows["card"]["batch_size"] = card_batch
        rows["st_default"]["batch_size"] = ST_DEFAULT_BATCH
        results.append(
            {
                "workload": workload.name,
                "description": workload.description,
                "command": args.command,
                "tokens": tokens,
                "st_sweep_p50_ms": {str(k): v * 1e3 for k, v in sorted(sweep_p50.items())},
                "systems": rows,
                "seconds": time.perf_counter() - started,
            }
        )
        print(f"{workload.name} done in {results[-1]['seconds']:.1f}s", file=sys.stderr)
        if on_result is not None:
            on_result(report)
    return report


def environment(args, device, dtype, iters, w5_docs, peak, path, encoder) -> dict[str, Any]:
    import sentence_transformers
    import transformers

    config = encoder.model.config
    return {
        "command": args.command,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU: {_cpu_name()}",
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "shape": args.shape,
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "iters": iters,
        "max_seconds": args.max_seconds,
        "w5_docs": w5_docs,
        "docs_scale": args.docs_scale,
        "peak_tflops": peak,
        "card_batch_tokens": args.card_batch_tokens or (32768 if device.type == "cuda" else 2048),
        "our_batch_tokens": args.batch_tokens,
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "checkpoint": str(path),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


#: Environment fields that must agree before ``--merge`` puts two runs' workloads in one report.
MERGE_KEYS = ("device", "shape", "layers", "hidden", "dtype")


def merge_reports(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """``later``'s workloads plus those of ``earlier`` it did not run, in workload order; environments must agree.

    Raises:
        SystemExit: The two runs differ in device, shape, layers or dtype (their figures are not comparable).
    """
    old_env, new_env = earlier["environment"], later["environment"]
    differ = [key for key in MERGE_KEYS if old_env.get(key) != new_env.get(key)]
    if differ:
        raise SystemExit(
            f"--merge: the earlier run differs in {', '.join(differ)} "
            f"({', '.join(f'{k}={old_env.get(k)!r}' for k in differ)}); use another --tag"
        )
    ran = {result["workload"] for result in later["results"]}
    # results recorded before each carried its own command take their run's
    kept = [{"command": old_env["command"], **r} for r in earlier["results"] if r["workload"] not in ran]
    results = kept + later["results"]
    return {"environment": new_env, "results": sorted(results, key=lambda r: r["workload"])}


def write_report(report: dict[str, Any], out_dir: Path, tag: str) -> None:
    """``<tag>.json``, ``<tag>.md`` (tables) and ``<tag>.png`` (ratio chart) under ``out_dir``."""
    env = report["environment"]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / f"{tag}.md").write_text(render_markdown(report))
    render_chart(report, out_dir / f"{tag}.png", title=chart_title(env))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    tag = args.tag or f"{torch.device(args.device).type}-{args.shape}" + (f"-L{args.layers}" if args.layers else "")
    out_dir = Path(args.out_dir)
    earlier_path = out_dir / f"{tag}.json"
    earlier = json.loads(earlier_path.read_text()) if args.merge and earlier_path.is_file() else None
    if earlier and earlier["environment"].get("shape") != args.shape:  # the rest is checked once the model is built
        shape = earlier["environment"].get("shape")
        raise SystemExit(f"--merge: {earlier_path} holds shape {shape!r}, not {args.shape!r}; use another --tag")

    def save(report: dict[str, Any]) -> None:
        write_report(merge_reports(earlier, report) if earlier else report, out_dir, tag)

    report = run(args, on_result=save)
    if not report["results"]:
        raise SystemExit("no workload ran (W1 needs ../shared/data/locomo10.json)")
    print(render_markdown(merge_reports(earlier, report) if earlier else report))


if __name__ == "__main__":
    main()
