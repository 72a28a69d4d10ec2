"""The local backend's one import boundary for torch: its torch-free modules (options, model reference, planning,
the gate, the backend class) never import torch, the others import it at their top, and nothing imports inside a
function except ``LocalBackend``'s one load of ``runner``. Its modules import each other without a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import memreranker_core.backends.local as local_package

PACKAGE = Path(local_package.__file__).parent
PREFIX = "memreranker_core.backends.local."
TORCH_FREE = ("options", "reference", "planning", "gate", "backend")
#: (module, function) pairs allowed to import inside a function: the backend's load of its torch side
BOUNDARY = {("backend", "_loaded_runner")}


def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}


def _imports_inside_functions(tree: ast.Module) -> list[tuple[str, int]]:
    found = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    found.append((function.name, node.lineno))
    return found


def test_no_module_of_the_local_backend_imports_inside_a_function_but_the_one_boundary():
    inside = {
        (name, function, line)
        for name, tree in _modules().items()
        for function, line in _imports_inside_functions(tree)
        if (name, function) not in BOUNDARY
    }
    assert inside == set()
    assert any(function == "_loaded_runner" for function, _ in _imports_inside_functions(_modules()["backend"]))


def test_no_class_is_built_inside_a_function():
    for name, tree in _modules().items():
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert not any(isinstance(node, ast.ClassDef) for node in ast.walk(function)), name


def _local_imports(tree: ast.Module) -> set[str]:
    """The local modules that ``tree`` imports at its top (``TYPE_CHECKING`` blocks included)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            names.add(node.module.removeprefix(PREFIX))
    return names


def test_the_local_modules_import_each_other_without_a_cycle():
    graph = {name: _local_imports(tree) - {name} for name, tree in _modules().items()}
    assert "budget" not in graph["planning"], "planning must not import budget (budget imports planning)"
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for imported in graph.get(name, ()):
            visit(imported, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_the_torch_free_modules_import_no_torch_and_the_others_import_it_at_their_top():
    probe = (
        "import sys\n"
        + "".join(f"import {PREFIX}{name}\n" for name in TORCH_FREE)
        + "print(' '.join(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == []
    for name, tree in _modules().items():
        if name not in (*TORCH_FREE, "__init__"):
            top = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
            top |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
            assert "torch" in top, f"{name} uses torch: it imports it at its top"
