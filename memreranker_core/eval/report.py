"""Write an evaluation's results: ``results.json``, ``results.md`` (markdown table), ``chart.png`` and
``per_question.jsonl``.

Example:
    >>> paths = write_report(run, summarize(run), "eval-out")  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['chart', 'json', 'markdown', 'per_question']
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from memreranker_core._optional import require
from memreranker_core.eval.metrics import CARD_COLUMNS
from memreranker_core.eval.runner import OVERALL, EvalRun, GroupSummary, Summary

logger = logging.getLogger(__name__)

F1_DEFINITION = (
    "F1: per question, the selected set is every candidate with P(yes) >= threshold; "
    "P = |selected ∩ evidence| / |selected|, R = |selected ∩ evidence| / |evidence| (all evidence turns, "
    "retrieved or not); F1 = 2PR/(P+R), 0 when nothing selected is evidence; averaged over questions."
)


def results_dict(run: EvalRun, summary: Summary) -> dict[str, Any]:
    """Everything ``results.json`` holds: settings, data counts, skipped questions, per-group metrics, latency."""
    return {
        "benchmark": "LoCoMo retrieve-then-rerank",
        "config": asdict(run.config),
        "first_stage": run.first_stage,
        "reranker": run.reranker,
        "data": {
            "source": run.source,
            "turns": run.num_turns,
            "questions": run.num_questions,
            "evaluated": len(run.outcomes),
            "skipped_no_evidence": len(run.skipped_no_evidence),
            "skipped_question_ids": list(run.skipped_no_evidence),
            "evidence_repairs": [dict(repair) for repair in run.evidence_repairs],
        },
        "metric_definitions": {
            "ranking": "ranx: map, mrr, ndcg@k, ndcg, recall@k; binary relevance = the question's evidence turns",
            "F1": F1_DEFINITION,
            "latency": "wall time of one rerank call per question (K candidates), mean and 95th percentile",
        },
        "groups": {name: _group_dict(group) for name, group in summary.groups.items()},
    }


def _group_dict(group: GroupSummary) -> dict[str, Any]:
    return {
        "questions": group.questions,
        "first_stage": _clean(group.first_stage),
        "reranked": None if group.reranked is None else _clean(group.reranked),
        "candidate_recall": _number(group.candidate_recall),
        "latency_mean_s": _number(group.latency_mean_s),
        "latency_p95_s": _number(group.latency_p95_s),
    }


def _clean(values: dict[str, float]) -> dict[str, float | None]:
    return {key: _number(value) for key, value in values.items()}


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def markdown_table(run: EvalRun, summary: Summary) -> str:
    """The card's ten columns, one row per (group, system), plus candidate recall and latency columns."""
    k = run.config.candidates
    stage = run.config.first_stage.upper() if run.config.first_stage.lower() == "bm25" else run.config.first_stage
    model = (run.reranker or {}).get("model") or (run.reranker or {}).get("backend") or "reranker"
    head = ["group", "n", "system", *CARD_COLUMNS, f"R@{k} (cands)", "latency mean / p95"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, group in summary.groups.items():
        ceiling = _fmt(group.candidate_recall)
        lines.append(_row([name, str(group.questions), f"{stage} top-{k}", *_cells(group.first_stage), ceiling, "—"]))
        if group.reranked is not None:
            latency = f"{_ms(group.latency_mean_s)} / {_ms(group.latency_p95_s)}"
            lines.append(_row([name, str(group.questions), f"+ {model}", *_cells(group.reranked), ceiling, latency]))
    notes = [
        "",
        f"Data: {run.source or 'LoCoMo'}: {run.num_questions} questions, {len(run.outcomes)} evaluated, "
        f"{len(run.skipped_no_evidence)} skipped for lack of evidence; {len(run.evidence_repairs)} evidence entries "
        "repaired or dropped.",
        f"Candidates: {stage} top-{k} of the conversation's turns rendered as {run.config.document_template!r}. "
        "'overall' is categories 1-4; category 5 (adversarial) is reported apart. "
        f"F1 threshold: {run.config.threshold}.",
        F1_DEFINITION,
        "The first stage has no F1: its scores are not calibrated probabilities.",
    ]
    return "\n".join(lines + notes) + "\n"


def _cells(values: dict[str, float]) -> list[str]:
    return [_fmt(values[column]) if column in values else "—" for column in CARD_COLUMNS]


def _fmt(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.3f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f} ms"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def plot_chart(run: EvalRun, summary: Summary, path: Path) -> Path:
    """A grouped bar chart of the overall card columns, first stage vs reranked, as a PNG (Agg canvas)."""
    require("matplotlib", extra="eval", purpose="The evaluation chart")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    name = OVERALL if OVERALL in summary.groups else next(iter(summary.groups))
    group = summary.groups[name]
    series = [(f"{run.config.first_stage} top-{run.config.candidates}", group.first_stage)]
    if group.reranked is not None:
        series.append(("reranked", group.reranked))
    figure = Figure(figsize=(11, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / len(series)
    for number, (label, values) in enumerate(series):
        heights = [values.get(column, math.nan) for column in CARD_COLUMNS]
        positions = [x + (number - (len(series) - 1) / 2) * width for x in range(len(CARD_COLUMNS))]
        bars = axes.bar(positions, [0.0 if math.isnan(h) else h for h in heights], width, label=label)
        for bar, height in zip(bars, heights, strict=True):
            if not math.isnan(height):
                axes.annotate(
                    f"{height:.2f}", (bar.get_x() + bar.get_width() / 2, height), ha="center", va="bottom", fontsize=7
                )
    axes.set_xticks(range(len(CARD_COLUMNS)), CARD_COLUMNS)
    axes.set_ylim(0, 1.05)
    axes.set_title(f"LoCoMo memory retrieval, {name} ({group.questions} questions)")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def write_report(run: EvalRun, summary: Summary, out_dir: str | Path) -> dict[str, Path]:
    """Write the four files into ``out_dir`` (created if needed); returns their paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "results.json",
        "markdown": out / "results.md",
        "chart": out / "chart.png",
        "per_question": out / "per_question.jsonl",
    }
    paths["json"].write_text(json.dumps(results_dict(run, summary), indent=2, ensure_ascii=False) + "\n", "utf-8")
    paths["markdown"].write_text(markdown_table(run, summary), encoding="utf-8")
    with paths["per_question"].open("w", encoding="utf-8") as handle:
        for outcome in run.outcomes:
            handle.write(json.dumps(asdict(outcome), ensure_ascii=False) + "\n")
    plot_chart(run, summary, paths["chart"])
    logger.info("wrote %s", ", ".join(str(path) for path in paths.values()))
    return paths
