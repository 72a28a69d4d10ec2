"""A typed public surface: ``MemReranker``'s keywords are typed from the options dataclasses (and cannot drift from
them), and a type checker (mypy, configured in pyproject.toml) passes over ``examples/`` and catches a mistyped
option."""

from __future__ import annotations

import subprocess
import sys
import time
import types
import typing
from typing import Any, get_type_hints

import pytest

from memreranker_core.backends import BACKENDS, options_class
from memreranker_core.backends.keywords import HostedKeywords, LocalKeywords, OptionKeywords
from tests.conftest import REPO_ROOT

KEYWORDS = {"local": LocalKeywords, "hosted": HostedKeywords}


def _parts(hint: Any) -> set[Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return set(typing.get_args(hint))
    return {hint}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_the_typed_keywords_name_every_option_and_accept_what_its_field_holds(name):
    cls, keywords = options_class(name), KEYWORDS[name]
    assert set(keywords.__annotations__) == set(cls.names()), "keywords.py and the options dataclass differ"
    fields, accepted = get_type_hints(cls), get_type_hints(keywords)
    for option in cls.names():
        field, keyword = fields[option], accepted[option]
        if keyword is Any or field is Any:
            continue
        missing = (_parts(field) | {type(None)}) - _parts(keyword)
        assert not missing, f"{name} option {option!r}: keyword type {keyword} lacks {missing} (field: {field})"


def test_memreranker_accepts_every_backends_keywords():
    every = set().union(*(options_class(name).names() for name in BACKENDS))
    assert set(OptionKeywords.__annotations__) == every and OptionKeywords.__total__ is False


MISTAKES = """
from memreranker_core import MemReranker

MemReranker(backend="hosted", read_timout=3)
MemReranker(backend="hosted", read_timeout="3")
"""


def test_mypy_passes_over_the_examples_and_catches_a_mistyped_option(tmp_path):
    pytest.importorskip("mypy", reason="the test extra installs mypy")
    mistakes = tmp_path / "mistakes.py"
    mistakes.write_text(MISTAKES, encoding="utf-8")
    command = [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "--cache-dir", str(tmp_path / "cache")]
    command += ["--no-error-summary", "--show-error-codes", "examples", str(mistakes)]
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    took = time.monotonic() - started
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    in_examples = [line for line in errors if not line.startswith(str(mistakes))]
    assert not in_examples, "mypy finds errors in examples/:\n" + "\n".join(in_examples) + result.stderr
    caught = [line for line in errors if line.startswith(str(mistakes))]  # the control: the checker sees the types
    assert len(caught) == 2 and "read_timout" in caught[0] and "read_timeout" in caught[1], result.stdout
    assert took < 120, f"mypy took {took:.0f} s; keep the type check to seconds (pyproject.toml [tool.mypy])"
