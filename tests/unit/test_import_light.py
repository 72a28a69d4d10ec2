"""``import memreranker_core`` stays light: no torch, transformers or requests until a backend needs them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "requests",
    "langchain_core",
    "llama_index",
    "haystack",
)


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(result.stdout.split())


def test_importing_the_core_loads_no_heavy_dependency():
    assert _loaded_after("import memreranker_core") == set()


def test_constructing_a_local_reranker_loads_no_heavy_dependency():
    assert _loaded_after("from memreranker_core import MemReranker\nMemReranker(backend='local')") <= {"requests"}


def test_the_hosted_backend_never_imports_torch():
    loaded = _loaded_after(
        "from memreranker_core import MemReranker\n"
        "MemReranker(backend='hosted', api_key='k', base_url='http://127.0.0.1:9')"
    )
    assert not {"torch", "transformers", "sentence_transformers"} & loaded
