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
        f"Command: `{env['command']}`",
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
    return "\n".join(lines) + "\n"


def _plan(tokens: dict[str, Any]) -> str:
    """Our forward passes and the tokens they ran (padding included), or n/a in runs recorded before they were."""
    if "ours_passes" not in tokens:
        return "n/a"
    mode = "shared prefix" if tokens["ours_shares_prefix"] else "whole prompts"
    return f"{tokens['ours_passes']}, {tokens['ours_tokens_run']:,} ({mode})"


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
        title = f"{env['device']} · {env['shape']} ({env['layers']} layers)"
        render_chart(report, path.with_suffix(".png"), title=title)


if __name__ == "__main__":
    main()
