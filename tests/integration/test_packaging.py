"""The wheel installs into a fresh virtual environment and every import path works from it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMPORTS = [
    "import memreranker_core",
    "from memreranker_core import MemReranker, RerankResult, errors",
    "from langchain_memreranker import MemRerankerCompressor",
    "from llama_index.postprocessor.memreranker import MemRerankerPostprocessor",
    "from haystack_integrations.components.rankers.memreranker import MemRerankerRanker",
    "from mem0_memreranker import MemRerankerMem0, register",
    "from graphiti_memreranker import MemRerankerCrossEncoder",
    "from agno_memreranker import MemRerankerAgno",
    # memos_memreranker: MemOS is not in the test environment (it pins openai<2); its files are checked below.
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            "-q",
        ],
        check=True,
        timeout=300,
    )
    return next(out.glob("memreranker-*.whl"))


def test_wheel_holds_every_package_with_namespace_levels_left_open(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "memreranker_core/__init__.py",
        "memreranker_core/py.typed",
        "memreranker_core/backends/local/backend.py",
        "memreranker_core/backends/local/options.py",
        "memreranker_core/backends/hosted/backend.py",
        "memreranker_core/backends/hosted/options.py",
        "memreranker_core/cli/__init__.py",
        "memreranker_core/prompt_tokens.py",
        "langchain_memreranker/__init__.py",
        "llama_index/postprocessor/memreranker/__init__.py",
        "haystack_integrations/components/rankers/memreranker/__init__.py",
        "mem0_memreranker/py.typed",
        "graphiti_memreranker/py.typed",
        "memos_memreranker/reranker.py",
        "memos_memreranker/py.typed",
        "agno_memreranker/py.typed",
    ):
        assert required in names, f"{required} missing from the wheel"
    for namespace in (
        "llama_index",
        "llama_index/postprocessor",
        "haystack_integrations",
        "haystack_integrations/components",
        "haystack_integrations/components/rankers",
    ):
        assert f"{namespace}/__init__.py" not in names, f"{namespace} must stay a namespace package"
    assert not any(name.startswith(("tests/", "shared/", "benchmarks/")) for name in names)


def test_wheel_installs_into_a_fresh_venv_and_every_import_path_works(wheel, tmp_path):
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )
    # The frameworks come from the test environment, appended after the fresh venv's own site-packages, so the
    # packages under test are the wheel's (the test environment's editable install is not activated).
    fresh_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(fresh_site) / "zz_test_frameworks.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = "\n".join(IMPORTS) + (
        "\nimport memreranker_core, langchain_memreranker\n"
        f"assert memreranker_core.__file__.startswith({fresh_site!r}), memreranker_core.__file__\n"
        f"assert langchain_memreranker.__file__.startswith({fresh_site!r})\n"
        "print('ALL_IMPORTS_OK')"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "ALL_IMPORTS_OK" in result.stdout, result.stderr[-3000:]
