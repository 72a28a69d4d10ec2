"""Checking a service's results before any score is attached to a document, and turning P(yes) into log-odds.

A result list is accepted only if every index is an integer in range, seen once, every document is scored and
every score is a probability in [0, 1]. Otherwise the answer is rejected whole, naming what was wrong, so that a
score can never land on the wrong document.

Example:
    >>> scores_by_position([{"index": 1, "relevance_score": 0.2}, {"index": 0, "relevance_score": 0.9}], [7, 8])
    [0.9, 0.2]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

SCORE_FIELDS = ("relevance_score", "score")


class ResultsProblem(ValueError):
    """The results cannot be trusted; the message says why (the caller turns it into MalformedResponseError)."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def scores_by_position(results: Sequence[Any], positions: Sequence[int]) -> list[float]:
    """Probabilities in request order, from results in any order.

    Args:
        results: The service's result items (``{"index", "relevance_score" | "score"}``).
        positions: The caller's document positions sent in this request, used to name problems.

    Raises:
        ResultsProblem: An index is missing, repeated, out of range or not an integer, or a score is not a
            number in [0, 1].
    """
    count = len(positions)
    scores: list[float | None] = [None] * count
    stray: list[Any] = []
    repeated: list[int] = []
    bad_scores: list[str] = []
    for item in results:
        if not isinstance(item, dict):
            stray.append(item)
            continue
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            stray.append(index)
            continue
        if scores[index] is not None:
            repeated.append(positions[index])
            continue
        raw = next((item[key] for key in SCORE_FIELDS if key in item), None)
        score = _number(raw)
        if score is None or math.isnan(score) or not 0.0 <= score <= 1.0:
            bad_scores.append(f"document {positions[index]}: {raw!r}")
            scores[index] = math.nan
            continue
        scores[index] = score
    missing = [positions[i] for i, score in enumerate(scores) if score is None]
    problems = []
    if missing:
        problems.append(f"no score for document(s) {_short(missing)}")
    if repeated:
        problems.append(f"document(s) {_short(sorted(set(repeated)))} scored more than once")
    if stray:
        problems.append(f"result index(es) {_short(stray)} out of range for {count} documents sent")
    if bad_scores:
        problems.append(f"score(s) not a probability in [0, 1]: {_short(bad_scores)}")
    if problems:
        raise ResultsProblem("; ".join(problems))
    return [float(score) for score in scores]  # type: ignore[arg-type]


def log_odds(probability: float) -> float:
    """``log(p / (1 - p))``, exact near 0 and 1; ``+inf`` for 1 and ``-inf`` for 0."""
    if probability >= 1.0:
        return math.inf
    if probability <= 0.0:
        return -math.inf
    return math.log(probability) - math.log1p(-probability)


def _short(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(value) if isinstance(value, str) else str(value) for value in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"
