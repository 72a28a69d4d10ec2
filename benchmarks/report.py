"""Markdown tables and the ratio chart of a benchmark run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABELS = {
    "ours": "memreranker local",
    "st_default": "ST CrossEncoder (batch 32)",
    "st_best": "ST CrossEncoder (best batch)",
    "card": "card recipe",
}


def _mib(value: float) -> str:
    return f"{value / 1024:.2f} GiB" if value >= 1024 else f"{value:.0f} MiB"


def render_markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"Device: {env['device']} ({env['torch_threads']} torch threads) · dtype {env['dtype']} · shape "
        f"{env['shape']} ({env['layers']} layers, hidden {env['hidden']}) · {env['iters']} timed calls per system",
        f"Libraries: Python {env['python']}, torch {env['torch']}, transformers {env['transformers']}, "
        f"sentence-transformers {env['sentence_transformers']}",
        *_commands(report),
        "",
        "| workload | system | p50 ms | p95 ms | pairs/s | tokens/s | MFU | peak memory (over baseline) "
        "| max abs diff vs card fp32 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for result in report["results"]:
        for name, row in result["systems"].items():
            label = LABELS[name] + (f" = {row['batch_size']}" if name == "st_best" else "")
            mfu = "n/a" if row["mfu"] is None else f"{100 * row['mfu']:.1f} %"
            lines.append(
                f"| {result['workload']} | {label} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
                f"{row['pairs_per_s']:.1f} | {row['tokens_per_s']:,.0f} | {mfu} | "
                f"{_mib(row['peak_memory_mib'])} ({_mib(row['memory_over_baseline_mib'])}) | "
                f"{row['max_abs_diff_vs_reference']:.1e} |"
            )
    lines += [
        "",
        "| workload | pairs | mean tokens/pair | shared prefix | ours: passes, tokens run | ours = card tokens | "
        "ST = card tokens | ours / ST best | ours / ST default | ours / card |",
        "| --- | ---: | ---: | ---: | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for result in report["results"]:
        tokens, systems = result["tokens"], result["systems"]
        ratio = {name: systems["ours"]["pairs_per_s"] / systems[name]["pairs_per_s"] for name in systems}
        lines.append(
            f"| {result['workload']} | {tokens['pairs']:,} | {tokens['mean_pair_tokens']:.0f} | "
            f"{tokens['shared_prefix_tokens']} | {_plan(tokens)} | {'yes' if tokens['ours_equals_card'] else 'NO'} | "
            f"{'yes' if tokens['st_equals_card'] else 'NO'} | {ratio['st_best']:.2f}x | "
            f"{ratio['st_default']:.2f}x | {ratio['card']:.2f}x |"
        )
    lines += ["", *render_targets(report)]
    return "\n".join(lines) + "\n"


def _commands(report: dict[str, Any]) -> list[str]:
    """``Command: ...``, or one line per command when ``--merge`` put several runs' workloads together."""
    commands: dict[str, list[str]] = {}
    for result in report["results"]:
        commands.setdefault(result.get("command", report["environment"]["command"]), []).append(result["workload"])
    if len(commands) <= 1:
        return [f"Command: `{next(iter(commands), report['environment']['command'])}`"]
    return [f"Command ({', '.join(names)}): `{command}`" for command, names in commands.items()]


#: The speed targets hold for a GPU, the 4B shapes and bf16; other runs show the figures without a verdict.
TARGET_RUN = "CUDA, shape 4b, bfloat16"


#: (workload, least speedup over the best sentence-transformers setting, the target as stated)
SPEEDUP_TARGETS = (
    ("W1", 2.0, "W1: pairs/s at least 2x the best sentence-transformers setting"),
    ("W2", 1.3, "W2: pairs/s at least 1.3x the best sentence-transformers setting"),
    ("W4", 1.0, "W4: latency no worse than the best sentence-transformers setting"),
)


def targets(report: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """The speed targets as ``(target, measured, met)``; ``met`` is None where the run is not the target's kind.

    Example:
        >>> row = {"pairs_per_s": 2.0, "mfu": None, "peak_memory_mib": 10.0, "max_abs_diff_vs_reference": 0.0}
        >>> env = {"device": "CPU: x", "shape": "tiny", "dtype": "float32"}
        >>> targets({"environment": env, "results": [{"workload": "W1", "systems": {"ours": row, "st_best": row}}]})[0]
        ('W1: pairs/s at least 2x the best sentence-transformers setting', '1.00x', None)
    """
    env = report["environment"]
    # CPU memory figures are the process RSS and CPU speeds say nothing of a GPU's: no verdict off CUDA
    judged = not env["device"].startswith("CPU") and env["shape"] == "4b" and env["dtype"] == "bfloat16"
    ours = {r["workload"]: r["systems"]["ours"] for r in report["results"]}
    speedup = {
        r["workload"]: ours[r["workload"]]["pairs_per_s"] / r["systems"]["st_best"]["pairs_per_s"]
        for r in report["results"]
    }

    def verdict(ok: bool) -> bool | None:
        return ok if judged else None

    rows: list[tuple[str, str, bool | None]] = []
    for workload, least, target in SPEEDUP_TARGETS:
        if workload in speedup:
            rows.append((target, f"{speedup[workload]:.2f}x", verdict(speedup[workload] >= least)))
        else:
            rows.append((target, "not run", None))
    mfu = ours.get("W2", {}).get("mfu")
    rows.append(
        (
            "W2: model FLOP utilisation at least 50 %",
            "n/a" if mfu is None else f"{100 * mfu:.1f} %",
            None if mfu is None else verdict(mfu >= 0.5),
        )
    )
    if "W2" in ours and "W5" in ours:
        growth = ours["W5"]["peak_memory_mib"] / ours["W2"]["peak_memory_mib"]
        rows.append(("W5: peak memory within 10 % of W2's", f"{growth:.2f}x W2's", verdict(growth <= 1.10)))
    else:
        rows.append(("W5: peak memory within 10 % of W2's", "not run", None))
    worst = max(row["max_abs_diff_vs_reference"] for row in ours.values())
    rows.append(
        (
            f"{env['dtype']} scores within 0.02 of the float32 card recipe, every workload",
            f"{worst:.1e}",
            verdict(worst <= 0.02),
        )
    )
    return rows


def render_targets(report: dict[str, Any]) -> list[str]:
    """The targets table: each target, what this run measured, and met / missed (or — for other kinds of run)."""
    marks = {True: "met", False: "**missed**", None: "—"}
    lines = [
        f"Speed targets (judged on {TARGET_RUN}; — = not judged on this run):",
        "",
        "| target | measured | verdict |",
        "| --- | ---: | --- |",
    ]
    lines += [f"| {target} | {measured} | {marks[met]} |" for target, measured, met in targets(report)]
    return lines


def _plan(tokens: dict[str, Any]) -> str:
    """Our forward passes and the tokens they ran (padding included), or n/a in runs recorded before they were."""
    if "ours_passes" not in tokens:
        return "n/a"
    mode = "shared prefix" if tokens["ours_shares_prefix"] else "whole prompts"
    return f"{tokens['ours_passes']}, {tokens['ours_tokens_run']:,} ({mode})"


def chart_title(env: dict[str, Any]) -> str:
    """The chart's title: device, shape, depth and dtype of the run."""
    return f"{env['device']} · {env['shape']} ({env['layers']} layers) · {env['dtype']}"


def render_chart(report: dict[str, Any], path: Path, *, title: str) -> None:
    """Bar chart: our pairs/s divided by each peer's, per workload (1.0 = as fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["workload"] for r in report["results"]]
    peers = ["st_best", "st_default", "card"]
    fig, axis = plt.subplots(figsize=(7.5, 3.8), dpi=120)
    width = 0.8 / len(peers)
    for offset, peer in enumerate(peers):
        values = [r["systems"]["ours"]["pairs_per_s"] / r["systems"][peer]["pairs_per_s"] for r in report["results"]]
        xs = [i + (offset - 1) * width for i in range(len(names))]
        bars = axis.bar(xs, values, width, label=f"vs {LABELS[peer]}")
        axis.bar_label(bars, fmt="%.1fx", fontsize=7)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_yscale("log")
    axis.set_xticks(range(len(names)), names)
    axis.set_ylabel("our pairs/s ÷ peer's (log scale)")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Re-render the table and chart of a saved run: ``python -m benchmarks.report results/cpu-tiny.json``."""
    import json
    import sys

    for name in argv if argv is not None else sys.argv[1:]:
        path = Path(name)
        report = json.loads(path.read_text())
        env = report["environment"]
        path.with_suffix(".md").write_text(render_markdown(report))
        render_chart(report, path.with_suffix(".png"), title=chart_title(env))


if __name__ == "__main__":
    main()
