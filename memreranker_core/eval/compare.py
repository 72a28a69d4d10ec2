"""Two saved LoCoMo runs side by side: ``memreranker eval compare A/results.json B/results.json``.

Each run's *system* is its reranked order when it has one, else its first stage. The two are paired on the
questions both evaluated (their ids), grouped as in ``eval locomo`` (``overall`` = categories 1-4, each category,
category 5 apart), and every card column is tested with ranx's paired test (``significance``) on the per-question
values that ``eval locomo`` saved in ``per_question.jsonl`` beside ``results.json``.

Example:
    >>> comparison = compare_runs(load_saved_run("runs/a/results.json"), load_saved_run("runs/b"))  # doctest: +SKIP
    >>> paths = write_comparison(comparison, "runs/a-vs-b")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memreranker_core._optional import require
from memreranker_core.errors import InvalidInputError
from memreranker_core.eval.locomo import ADVERSARIAL_CATEGORY
from memreranker_core.eval.metrics import CARD_COLUMNS, mean
from memreranker_core.eval.report import short_model_name
from memreranker_core.eval.runner import OVERALL, group_name
from memreranker_core.eval.significance import DEFAULT_MAX_P, Significance, check_test, compare_columns

logger = logging.getLogger(__name__)

SIGNIFICANT_MARK = "†"


@dataclass(frozen=True)
class SavedRun:
    """One ``eval locomo`` output, read back.

    Attributes:
        label: A short name for tables (the run folder's name).
        path: Its ``results.json``.
        results: ``results.json`` as a dict.
        system: ``"reranked"`` or ``"first_stage"``: which of its rankings is compared.
        rows: Question id -> ``{"category", "metrics", "candidate_recall"}`` in file order.

    Example:
        >>> load_saved_run("runs/memreranker-4b").system  # doctest: +SKIP
        'reranked'
    """

    label: str
    path: str
    results: dict[str, Any]
    system: str
    rows: dict[str, dict[str, Any]]

    def describe(self) -> str:
        """``label: model or first stage, pool, K``."""
        config = self.results.get("config", {})
        reranker = self.results.get("reranker") or {}
        what = reranker.get("model") or reranker.get("backend") if self.system == "reranked" else None
        stage = config.get("first_stage", "?")
        if stage in ("dense", "hybrid"):
            stage = f"{stage} ({short_model_name(str(config.get('embedding_model')))})"
        system = f"{what or 'reranker'} over {stage}" if self.system == "reranked" else f"{stage} (no reranker)"
        return f"{self.label}: {system}, pool {config.get('pool', 'first-stage')}, K={config.get('candidates')}"


def load_saved_run(path: str | Path) -> SavedRun:
    """Read ``results.json`` (or a folder holding it) and its ``per_question.jsonl``.

    Raises:
        InvalidInputError: A file is missing or is not an ``eval locomo`` output of this version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise InvalidInputError(f"{path} not found: pass a results.json written by `memreranker eval locomo`")
    results = _read_json(path.read_text(encoding="utf-8"), str(path))
    if not isinstance(results, dict) or "groups" not in results:
        raise InvalidInputError(f"{path} is not a results.json written by `memreranker eval locomo`")
    per_question = _per_question_path(path, results.get("per_question_file", "per_question.jsonl"))
    rows: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(per_question.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{per_question}:{number}"
        qid, row = _row(_read_json(line, where), where)
        if qid in rows:
            raise InvalidInputError(f"{where} repeats question id {qid!r}: each question must be saved once")
        rows[qid] = row
    if not rows:
        raise InvalidInputError(f"{per_question} holds no question")
    system = "reranked" if all("reranked" in row["metrics"] for row in rows.values()) else "first_stage"
    lacking = [qid for qid, row in rows.items() if system not in row["metrics"]]
    if lacking:
        raise InvalidInputError(
            f"{per_question}: question(s) {lacking[:5]} have no {system!r} metrics; re-run `memreranker eval locomo`"
        )
    return SavedRun(
        label=path.parent.name or str(path.parent), path=str(path), results=results, system=system, rows=rows
    )


@dataclass(frozen=True)
class GroupComparison:
    """One group's means for both runs, their difference and its significance.

    Attributes:
        questions: Questions of the group that both runs evaluated.
        a: Column -> mean of run A.
        b: Column -> mean of run B.
        delta: Column -> B - A.
        significance: Column -> the paired test of A vs B.
        candidate_recall: ``(A, B)`` mean evidence recall of each run's candidates (its ceiling).
    """

    questions: int
    a: dict[str, float]
    b: dict[str, float]
    delta: dict[str, float]
    significance: dict[str, Significance]
    candidate_recall: tuple[float, float]


@dataclass(frozen=True)
class Comparison:
    """Two runs compared group by group.

    Attributes:
        a: Run A.
        b: Run B.
        groups: Group name -> comparison.
        common: Number of questions both runs evaluated.
        only_a: Questions only A evaluated (left out).
        only_b: Questions only B evaluated (left out).
        stat_test: The test used.
        max_p: The significance level.
    """

    a: SavedRun
    b: SavedRun
    groups: dict[str, GroupComparison]
    common: int
    only_a: int
    only_b: int
    stat_test: str
    max_p: float


def _read_json(text: str, where: str) -> Any:
    """``text`` parsed as JSON, or ``InvalidInputError`` naming ``where`` (bad JSON, nesting past the interpreter's
    limit, or an integer too long to read)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidInputError(f"{where} is JSON nested too deeply to read") from None
    except ValueError as exc:  # json.JSONDecodeError, and an integer over Python's digit limit
        raise InvalidInputError(f"{where} is not valid JSON ({exc})") from None


def _per_question_path(results_path: Path, name: Any) -> Path:
    """The per-question file named in ``results.json``: a relative path that stays inside the run's folder."""
    folder = results_path.parent.resolve()
    if not isinstance(name, str) or not name or "\0" in name:
        raise InvalidInputError(f"{results_path}: per_question_file must be a file name, not {name!r:.80}")
    target = (folder / name).resolve()
    if Path(name).is_absolute() or not target.is_relative_to(folder):
        raise InvalidInputError(
            f"{results_path}: per_question_file {name!r:.80} points outside the run's folder {folder}; compare only "
            "reads the per-question file beside results.json"
        )
    if not target.is_file():
        raise InvalidInputError(f"{target} not found: compare needs the per-question file beside {results_path.name}")
    return target


def _row(row: Any, where: str) -> tuple[str, dict[str, Any]]:
    """One saved question, checked: ``(qid, {"category", "metrics", "candidate_recall"})``."""
    if not isinstance(row, dict):
        raise InvalidInputError(f"{where} must be a JSON object (one question), not a {type(row).__name__}")
    qid, category, metrics = row.get("qid"), row.get("category"), row.get("metrics")
    if not isinstance(qid, str) or not qid:
        raise InvalidInputError(f"{where} has no question id ('qid'): is this an `eval locomo` per_question.jsonl?")
    if isinstance(category, bool) or not isinstance(category, int):
        raise InvalidInputError(f"{where} ({qid}) has no whole-number 'category'")
    if not metrics or not isinstance(metrics, dict):
        raise InvalidInputError(
            f"{where} has no per-question metrics; re-run `memreranker eval locomo` with this version to write them"
        )
    for system, values in metrics.items():
        if not isinstance(values, dict) or not all(_is_number(value) for value in values.values()):
            raise InvalidInputError(f"{where} ({qid}): metrics[{system!r:.40}] must map metric names to numbers")
    recall = metrics.get("candidate_recall") or {}
    return qid, {"category": category, "metrics": metrics, "candidate_recall": recall.get("R@K", math.nan)}


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and _fits(value))


def _fits(value: int | float) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def compare_runs(a: SavedRun, b: SavedRun, stat_test: str = "student", max_p: float = DEFAULT_MAX_P) -> Comparison:
    """Pair two runs on their common questions and test every column both have, per group.

    Raises:
        InvalidInputError: The runs share no question, or the test settings are invalid.
    """
    check_test(stat_test, max_p)
    common = [qid for qid in a.rows if qid in b.rows]
    if not common:
        raise InvalidInputError(f"{a.path} and {b.path} share no question id: were they run on the same data?")
    members: dict[str, list[str]] = {}
    for qid in common:
        if a.rows[qid]["category"] != ADVERSARIAL_CATEGORY:
            members.setdefault(OVERALL, []).append(qid)
    for category in sorted({a.rows[qid]["category"] for qid in common}):
        members[group_name(category)] = [qid for qid in common if a.rows[qid]["category"] == category]
    values_a = {qid: a.rows[qid]["metrics"][a.system] for qid in common}
    values_b = {qid: b.rows[qid]["metrics"][b.system] for qid in common}
    columns = [c for c in CARD_COLUMNS if all(c in values_a[q] and c in values_b[q] for q in common)]
    groups = {}
    for name, qids in members.items():
        means_a = {column: mean([values_a[qid][column] for qid in qids]) for column in columns}
        means_b = {column: mean([values_b[qid][column] for qid in qids]) for column in columns}
        groups[name] = GroupComparison(
            questions=len(qids),
            a=means_a,
            b=means_b,
            delta={column: means_b[column] - means_a[column] for column in columns},
            significance=compare_columns(values_a, values_b, qids, columns, stat_test, max_p),
            candidate_recall=(
                mean([a.rows[qid]["candidate_recall"] for qid in qids]),
                mean([b.rows[qid]["candidate_recall"] for qid in qids]),
            ),
        )
    return Comparison(
        a=a,
        b=b,
        groups=groups,
        common=len(common),
        only_a=len(a.rows) - len(common),
        only_b=len(b.rows) - len(common),
        stat_test=stat_test,
        max_p=max_p,
    )


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def comparison_markdown(comparison: Comparison) -> str:
    """Per group: A's row, B's row and the delta row (B - A), significant deltas marked; then what was compared."""
    head = ["group", "n", "run", *CARD_COLUMNS, "R@K (cands)"]
    lines = [
        f"A = {comparison.a.describe()}",
        f"B = {comparison.b.describe()}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, group in comparison.groups.items():
        n = str(group.questions)
        cells_a = [_fmt(group.a.get(column)) for column in CARD_COLUMNS]
        cells_b = [_fmt(group.b.get(column)) for column in CARD_COLUMNS]
        deltas = []
        for column in CARD_COLUMNS:
            cell = _fmt(group.delta.get(column), signed=True)
            result = group.significance.get(column)
            if result is not None and result.significant:
                cell += SIGNIFICANT_MARK
            deltas.append(cell)
        recall_a, recall_b = group.candidate_recall
        lines.append("| " + " | ".join([name, n, "A", *cells_a, _fmt(recall_a)]) + " |")
        lines.append("| " + " | ".join([name, n, "B", *cells_b, _fmt(recall_b)]) + " |")
        lines.append("| " + " | ".join([name, n, "B − A", *deltas, _fmt(recall_b - recall_a, signed=True)]) + " |")
    test = "two-sided paired Student's t-test" if comparison.stat_test == "student" else "Fisher randomization test"
    pools = {run.results.get("config", {}).get("pool", "first-stage") for run in (comparison.a, comparison.b)}
    lines += [
        "",
        f"Compared on the {comparison.common} questions both runs evaluated"
        + (
            f" ({comparison.only_a} only in A and {comparison.only_b} only in B left out)."
            if comparison.only_a or comparison.only_b
            else "."
        ),
        f"{SIGNIFICANT_MARK}: B differs from A on the same questions at p <= {comparison.max_p} (ranx, {test}, per "
        "column and group, no multiple-testing correction). R@K (cands): evidence recall of each run's candidates.",
    ]
    if len(pools) > 1:
        lines.append(
            "Note: the runs used different pools (first-stage vs oracle): their tables measure different things."
        )
    return "\n".join(lines) + "\n"


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    """``comparison.json``: both runs, the test, and per group the means, deltas and p-values."""

    def clean(values: dict[str, float]) -> dict[str, float | None]:
        return {key: None if math.isnan(value) else round(value, 6) for key, value in values.items()}

    return {
        "a": {"path": comparison.a.path, "describe": comparison.a.describe(), "system": comparison.a.system},
        "b": {"path": comparison.b.path, "describe": comparison.b.describe(), "system": comparison.b.system},
        "questions": {"common": comparison.common, "only_a": comparison.only_a, "only_b": comparison.only_b},
        "stat_test": comparison.stat_test,
        "max_p": comparison.max_p,
        "groups": {
            name: {
                "questions": group.questions,
                "a": clean(group.a),
                "b": clean(group.b),
                "delta": clean(group.delta),
                "significance": {column: result.as_dict() for column, result in group.significance.items()},
                "candidate_recall": {"a": group.candidate_recall[0], "b": group.candidate_recall[1]},
            }
            for name, group in comparison.groups.items()
        },
    }


def plot_comparison(comparison: Comparison, path: Path) -> Path:
    """Grouped bars of the overall columns, A vs B, with a † over each significant difference (PNG, Agg)."""
    require("matplotlib", extra="eval", purpose="The comparison chart")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    name = OVERALL if OVERALL in comparison.groups else next(iter(comparison.groups))
    group = comparison.groups[name]
    columns = [column for column in CARD_COLUMNS if column in group.a]
    figure = Figure(figsize=(11, 4.8), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.4
    for number, (label, values) in enumerate(
        (("A: " + comparison.a.label, group.a), ("B: " + comparison.b.label, group.b))
    ):
        positions = [x + (number - 0.5) * width for x in range(len(columns))]
        heights = [0.0 if math.isnan(values[c]) else values[c] for c in columns]
        axes.bar(positions, heights, width, label=label)
    for x, column in enumerate(columns):
        result = group.significance.get(column)
        if result is not None and result.significant:
            top = max(group.a[column], group.b[column])
            axes.annotate(SIGNIFICANT_MARK, (x, top + 0.02), ha="center", va="bottom", fontsize=11)
    axes.set_xticks(range(len(columns)), columns)
    axes.set_ylim(0, 1.1)
    axes.set_title(f"LoCoMo, {name} ({group.questions} questions): A vs B; † p <= {comparison.max_p}")
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def write_comparison(comparison: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """Write ``comparison.md``, ``comparison.json`` and ``comparison.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "comparison.md", "json": out / "comparison.json", "chart": out / "comparison.png"}
    paths["markdown"].write_text(comparison_markdown(comparison), encoding="utf-8")
    paths["json"].write_text(json.dumps(comparison_dict(comparison), indent=2, ensure_ascii=False) + "\n", "utf-8")
    plot_comparison(comparison, paths["chart"])
    logger.info("wrote %s", ", ".join(str(path) for path in paths.values()))
    return paths
