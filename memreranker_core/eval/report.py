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
from memreranker_core.eval.runner import OVERALL, EvalRun, GroupSummary, Summary, recall_cutoffs
from memreranker_core.eval.significance import Significance

logger = logging.getLogger(__name__)

#: The mark of a reranked value that differs significantly from the first stage's (and, in ``compare``, of a
#: delta between two runs that is significant).
SIGNIFICANT_MARK = "†"

F1_DEFINITION = (
    "F1: per question, the selected set is every candidate with P(yes) >= threshold; "
    "P = |selected ∩ evidence| / |selected|, R = |selected ∩ evidence| / |evidence| (all evidence turns, "
    "retrieved or not); F1 = 2PR/(P+R), 0 when nothing selected is evidence; averaged over questions."
)


def pool_description(run: EvalRun) -> str:
    """One sentence naming the pool a table used and what it means."""
    k, stage = run.config.candidates, stage_label(run)
    if run.config.pool == "oracle":
        return (
            f"Pool: oracle. Each question's candidates are ALL its evidence turns plus {stage}'s best non-evidence "
            f"turns, {k} in all, in {stage} order; the pool always holds every evidence turn, so the reranked rows "
            "measure the reranker alone, not a retrieval system. The first-stage row is that pool in "
            f"{stage} order."
        )
    return (
        f"Pool: first-stage. Each question's candidates are {stage}'s top {k} of its conversation's turns "
        "(end to end: a reranker cannot recover evidence the first stage missed)."
    )


def stage_label(run: EvalRun) -> str:
    """``BM25``, ``dense (<model>)`` or ``hybrid RRF (BM25 + <model>)``."""
    name = run.config.first_stage.strip().lower()
    if name == "bm25":
        return "BM25"
    if name == "dense":
        return f"dense ({short_model_name(run.config.embedding_model)})"
    if name == "hybrid":
        return f"hybrid RRF (BM25 + {short_model_name(run.config.embedding_model)})"
    return run.config.first_stage


def short_model_name(model: str) -> str:
    """A hub id as given; an absolute folder by its last two parts (``results.json`` keeps the full path).

    Examples:
        >>> short_model_name("sentence-transformers/all-MiniLM-L6-v2")
        'sentence-transformers/all-MiniLM-L6-v2'
        >>> short_model_name("/opt/models/minilm/model")
        'minilm/model'
    """
    path = Path(model)
    return "/".join(path.parts[-2:]) if path.is_absolute() and len(path.parts) > 2 else model


def significance_definition(run: EvalRun) -> str:
    """How the reranked rows were tested against the first stage."""
    test = "two-sided paired Student's t-test" if run.config.stat_test == "student" else "Fisher randomization test"
    return (
        f"{SIGNIFICANT_MARK}: differs from the first-stage row on the same questions at p <= {run.config.max_p} "
        f"(ranx, {test}, per column and group, no multiple-testing correction)."
    )


def results_dict(run: EvalRun, summary: Summary) -> dict[str, Any]:
    """Everything ``results.json`` holds: settings, data counts, skipped questions, per-group metrics, latency."""
    return {
        "benchmark": "LoCoMo retrieve-then-rerank",
        "config": asdict(run.config),
        "pool": {"name": run.config.pool, "description": pool_description(run)},
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
            "candidate_recall": "mean share of each question's evidence turns among its candidates (the pool): "
            "the ceiling of any reranker",
            "first_stage_recall": "mean share of each question's evidence turns that the first stage ranks within "
            "the first N of all the conversation's turns, whatever the pool (macro: averaged over questions)",
            "first_stage_turn_recall": "share of all the group's evidence turns that the first stage ranks within "
            "the first N of their conversation's turns (micro: pooled over evidence turns)",
            "significance": significance_definition(run),
        },
        "per_question_file": "per_question.jsonl",
        "groups": {name: _group_dict(group) for name, group in summary.groups.items()},
    }


def _group_dict(group: GroupSummary) -> dict[str, Any]:
    return {
        "questions": group.questions,
        "first_stage": _clean(group.first_stage),
        "reranked": None if group.reranked is None else _clean(group.reranked),
        "candidate_recall": _number(group.candidate_recall),
        "first_stage_recall": _clean(group.first_stage_recall),
        "first_stage_turn_recall": _clean(group.first_stage_turn_recall),
        "significance": None
        if group.significance is None
        else {column: result.as_dict() for column, result in group.significance.items()},
        "latency_mean_s": _number(group.latency_mean_s),
        "latency_p95_s": _number(group.latency_p95_s),
    }


def _clean(values: dict[str, float]) -> dict[str, float | None]:
    return {key: _number(value) for key, value in values.items()}


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def markdown_table(run: EvalRun, summary: Summary) -> str:
    """The card's ten columns, one row per (group, system), plus candidate recall and latency columns; then the
    first stage's evidence recall, the pool and the significance test, stated."""
    k = run.config.candidates
    stage = stage_label(run)
    model = (run.reranker or {}).get("model") or (run.reranker or {}).get("backend") or "reranker"
    pool = "oracle pool" if run.config.pool == "oracle" else "top"
    head = ["group", "n", "system", *CARD_COLUMNS, f"R@{k} (cands)", "latency mean / p95"]
    title = f"Pool: **{run.config.pool}** ({stage} top {k})"
    if pool != "top":
        title = f"Pool: **oracle** (every evidence turn + {stage}'s best others, {k} in all: the reranker alone)"
    lines = [
        title,
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, group in summary.groups.items():
        ceiling = _fmt(group.candidate_recall)
        system = f"{stage} top-{k}" if pool == "top" else f"{stage} order, oracle pool of {k}"
        lines.append(_row([name, str(group.questions), system, *_cells(group.first_stage), ceiling, "—"]))
        if group.reranked is not None:
            latency = f"{_ms(group.latency_mean_s)} / {_ms(group.latency_p95_s)}"
            cells = _cells(group.reranked, group.significance)
            lines.append(_row([name, str(group.questions), f"+ {model}", *cells, ceiling, latency]))
    cutoffs = recall_cutoffs(k)
    lines += [
        "",
        f"Evidence recall of the first stage ({stage}) over all of each conversation's turns "
        + ("(the pool's ceiling is R@K):" if pool == "top" else "(what a first-stage pool would hold):"),
        "",
        "| group | n | "
        + " | ".join(f"R@{cutoff}" for cutoff in cutoffs)
        + " | "
        + " | ".join(f"turns@{cutoff}" for cutoff in cutoffs)
        + " |",
        "|" + "---|" * (2 * len(cutoffs) + 2),
    ]
    for name, group in summary.groups.items():
        recall = [_fmt(group.first_stage_recall.get(f"R@{cutoff}")) for cutoff in cutoffs]
        turns = [_fmt(group.first_stage_turn_recall.get(f"R@{cutoff}")) for cutoff in cutoffs]
        lines.append(_row([name, str(group.questions), *recall, *turns]))
    notes = [
        "",
        "R@N: mean over questions of the share of its evidence turns ranked within N (the card's recall); "
        "turns@N: share of all evidence turns ranked within N (pooled over turns).",
        pool_description(run),
        f"Data: {run.source or 'LoCoMo'}: {run.num_questions} questions, {len(run.outcomes)} evaluated, "
        f"{len(run.skipped_no_evidence)} skipped for lack of evidence; {len(run.evidence_repairs)} evidence entries "
        "repaired or dropped.",
        f"Turns rendered as {run.config.document_template!r}. "
        "'overall' is categories 1-4; category 5 (adversarial) is reported apart. "
        f"F1 threshold: {run.config.threshold}.",
        F1_DEFINITION,
        "The first stage has no F1: its scores are not calibrated probabilities.",
    ]
    if any(group.reranked is not None for group in summary.groups.values()):
        notes.append(significance_definition(run))
    return "\n".join(lines + notes) + "\n"


def _cells(values: dict[str, float], significance: dict[str, Significance] | None = None) -> list[str]:
    cells = []
    for column in CARD_COLUMNS:
        cell = _fmt(values[column]) if column in values else "—"
        if significance and column in significance and significance[column].significant:
            cell += SIGNIFICANT_MARK
        cells.append(cell)
    return cells


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
    label = f"{stage_label(run)} " + ("top-" if run.config.pool != "oracle" else "order, oracle pool of ")
    series = [(f"{label}{run.config.candidates}", group.first_stage)]
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
    axes.set_title(f"LoCoMo memory retrieval, {name} ({group.questions} questions), pool: {run.config.pool}")
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
            row = {**asdict(outcome), "metrics": summary.per_question.get(outcome.qid, {})}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    plot_chart(run, summary, paths["chart"])
    logger.info("wrote %s", ", ".join(str(path) for path in paths.values()))
    return paths
