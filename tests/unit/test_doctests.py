"""The examples in the modules' docstrings run and show what they say (one test per module)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

#: Packages whose modules' docstrings are run (each framework adapter only where its framework is installed).
PACKAGES = (
    "memreranker_core",
    "langchain_memreranker",
    "llama_index.postprocessor.memreranker",
    "haystack_integrations.components.rankers.memreranker",
    "mem0_memreranker",
    "graphiti_memreranker",
    "memos_memreranker",
    "agno_memreranker",
)
#: Modules that run something when imported.
NOT_IMPORTED = ("__main__",)


def module_names() -> list[str]:
    names = []
    for package_name in PACKAGES:
        try:
            package = importlib.import_module(package_name)
        except ImportError:
            continue
        names.append(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
            if info.name.rsplit(".", 1)[-1] not in NOT_IMPORTED:
                names.append(info.name)
    return names


@pytest.mark.parametrize("name", module_names())
def test_module_docstring_examples_run(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional framework of that module is not installed
        pytest.skip(f"{name}: {exc}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in finder.find(module, name):
        runner.run(test, out=report.append)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} docstring examples of {name} failed:\n" + "".join(report)[-3000:]
