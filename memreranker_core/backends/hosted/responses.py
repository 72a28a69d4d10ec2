"""Reading a service's answer, in one place: an HTTP exchange becomes an ``Answer`` or a ``Failure``, and an
``Answer`` becomes probabilities in request order or a ``Failure``. No string or sentinel error values.

``read_response`` decodes the body (JSON, nesting bounded by Python's recursion limit), reads the service's body
``code`` and message (the Memos API reports errors with HTTP 200 and a code) and maps errors with
``failures.classify``. ``probabilities`` finds the result list (``results``, ``data.results``, ``data`` or a bare
list) and accepts it only if every index is an integer in range, seen once, every document is scored and every
score is a probability in [0, 1]; otherwise the answer is rejected whole, naming what was wrong, so that a score
can never land on the wrong document.

Example:
    >>> answer = read_response(200, None, b'{"results": [{"index": 1, "score": 0.2}, {"index": 0, "score": 0.9}]}')
    >>> probabilities(answer, [7, 8])
    [0.9, 0.2]
    >>> read_response(200, None, b'{"code": 40132, "message": "bad key"}').error_class.__name__
    'AuthenticationError'
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from memreranker_core.backends.hosted.failures import SHORT_SECRET_NOTE, Failure, classify, malformed, quote

SCORE_FIELDS = ("relevance_score", "score")
MESSAGE_FIELDS = ("message", "msg", "detail", "error")
#: Longest rendering of one offending value in a message.
VALUE_LIMIT = 40


@dataclass(frozen=True)
class Answer:
    """A successful exchange: HTTP 2xx, JSON, and no error code in the body.

    Attributes:
        status: The HTTP status.
        payload: The decoded JSON body.
    """

    status: int
    payload: Any


@dataclass(frozen=True)
class _Body:
    """A decoded body: the JSON value, or ``text`` when it is not JSON."""

    json: Any = None
    text: str | None = None


def read_response(
    status: int, retry_after_header: str | None, content: bytes, secrets: Sequence[str | None] = ()
) -> Answer | Failure:
    """What one HTTP exchange amounts to.

    Args:
        status: The HTTP status.
        retry_after_header: The ``Retry-After`` header, if any.
        content: The whole (decoded, size-capped) body.
        secrets: The key and other secrets, removed from any quoted text before it is cut.
    """
    retry_after = parse_retry_after(retry_after_header)
    body = _decode(content)
    if body.text is not None:
        words = quote(body.text, secrets) or "empty body"
        if 200 <= status < 300:
            return malformed(f"HTTP {status} with a body that is not JSON ({words})")
        return classify(status=status, code=None, detail=words, retry_after=retry_after)
    payload = body.json
    code = _body_code(payload, secrets)
    if isinstance(code, Failure):
        if 200 <= status < 300:
            return code
        code = None
    if 200 <= status < 300 and code is None:
        return Answer(status, payload)
    return classify(status=status, code=code, detail=_message(payload, secrets), retry_after=retry_after)


def probabilities(
    answer: Answer, positions: Sequence[int], secrets: Sequence[str | None] = ()
) -> list[float] | Failure:
    """P(yes) per document in request order, from the answer's results in any order.

    Args:
        answer: A successful answer.
        positions: The caller's positions of the documents sent, used to name problems.
        secrets: Removed from any value quoted in a problem.
    """
    results = _results(answer.payload, secrets)
    if isinstance(results, Failure):
        return results
    count = len(positions)
    scores: list[float | None] = [None] * count
    stray: list[str] = []
    repeated: list[int] = []
    bad_scores: list[str] = []
    for item in results:
        if not isinstance(item, dict):
            stray.append(_shown(item, secrets))
            continue
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            stray.append(_shown(index, secrets))
            continue
        if scores[index] is not None:
            repeated.append(positions[index])
            continue
        raw = next((item[key] for key in SCORE_FIELDS if key in item), None)
        score = as_number(raw)
        if math.isnan(score) or not 0.0 <= score <= 1.0:
            bad_scores.append(f"document {positions[index]}: {_shown(raw, secrets)}")
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
        return malformed("; ".join(problems))
    return [float(score) for score in scores]  # type: ignore[arg-type]


def as_number(value: Any) -> float:
    """``value`` as a float when it is a JSON number a float can hold, else NaN (never an exception).

    An integer too large for a float (JSON allows hundreds of digits) is NaN, not an ``OverflowError``, so it is
    rejected like any other bad score.

    Example:
        >>> as_number(1), as_number(0.25), as_number(True), as_number("0.5"), as_number(10**400)
        (1.0, 0.25, nan, nan, nan)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.nan


def log_odds(probability: float) -> float:
    """``log(p / (1 - p))``, exact near 0 and 1; ``+inf`` for 1 and ``-inf`` for 0."""
    if probability >= 1.0:
        return math.inf
    if probability <= 0.0:
        return -math.inf
    return math.log(probability) - math.log1p(-probability)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds, fractional allowed, or an HTTP date); ``None`` if
    absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


# ----------------------------------------------------------------- pieces
def _decode(content: bytes) -> _Body:
    if not content:
        return _Body(text="")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return _Body(text=content.decode("utf-8", "replace"))
    try:
        return _Body(json=json.loads(text))
    except RecursionError:  # nested deeper than the interpreter's limit: not an answer anyone meant
        return _Body(text="a JSON value nested too deeply to read")
    except ValueError:
        return _Body(text=text)


def _body_code(payload: Any, secrets: Sequence[str | None]) -> int | Failure | None:
    """The body's error ``code`` (anything but 0 or 200), ``None`` when it signals success or has none, or a
    ``Failure`` when the code is not a number."""
    if not isinstance(payload, dict) or payload.get("code") is None:
        return None
    code = payload["code"]
    if isinstance(code, str) and code.strip().lstrip("-").isdigit() and len(code) < 12:
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int):
        return malformed(f"a non-numeric body code {_shown(code, secrets)}")
    if abs(code) >= 10**12:
        return malformed("a body code that is a huge integer")
    return None if code in (0, 200) else code


def _message(payload: Any, secrets: Sequence[str | None]) -> str:
    """The service's own error words, from whichever field the dialect uses, made safe to quote."""
    if isinstance(payload, dict):
        for key in MESSAGE_FIELDS:
            value = payload.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value:
                return quote(value, secrets)
    return ""


def _results(payload: Any, secrets: Sequence[str | None]) -> list[Any] | Failure:
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, dict):
        return malformed(f"expected a JSON object or list, got {type(payload).__name__}")
    if "results" in payload:
        results = payload["results"]
    elif isinstance(payload.get("data"), dict) and "results" in payload["data"]:
        results = payload["data"]["results"]
    elif "data" in payload:
        results = payload["data"]
    else:
        keys = [quote(str(key), secrets, VALUE_LIMIT) for key in list(payload)[:8]]
        return malformed(f"no 'results' or 'data' in the answer (keys: {sorted(keys)})")
    if not isinstance(results, list):
        return malformed(f"'results' is a {type(results).__name__}, not a list")
    return results


def _shown(value: Any, secrets: Sequence[str | None]) -> str:
    """A short rendering of an offending value: numbers as they are, strings quoted, anything else its type."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value) if not isinstance(value, int) or abs(value) < 10**12 else "a huge integer"
    if isinstance(value, str):
        words = quote(value, secrets, VALUE_LIMIT)
        if words == value:
            return repr(value)
        return "''" if not value else "a string" if words == SHORT_SECRET_NOTE else f"a string ({words})"
    return f"a {type(value).__name__}"


def _short(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(str(value) for value in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"
