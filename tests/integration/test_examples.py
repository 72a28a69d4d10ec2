"""Every example script runs, in a subprocess, with the local backend (tiny offline model) and the hosted backend
(the loopback RerankServer), and prints the scores the core gives for the texts it says it scored."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.rerank_server import RerankServer, overlap_score

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
QUERY = "When did Caroline go to the LGBTQ support group?"
SECRET = "sk-example-key-0000"
#: "  0.2914  [8 May 2023] Caroline: I went to a LGBTQ support group yesterday and it was so powerful."
RESULT_LINE = re.compile(r"^\s+(\d\.\d{4})\s+\[(.+?)\] (\w+): (.+)$")


def templated(date: str, speaker: str, text: str) -> str:  # document_template="[{date}] {speaker}: {text}"
    return f"[{date}] {speaker}: {text}"


def prepended(date: str, speaker: str, text: str) -> str:  # metadata fields ["date", "speaker"], separator "\n"
    return f"{date}\n{speaker}\n{text}"


def dated(date: str, speaker: str, text: str) -> str:  # Graphiti: the fact with its valid_at date, no speaker
    return f"{date}\n{text}"


#: script -> how it renders a memory into the text the model scores
FRAMEWORK_EXAMPLES: dict[str, Callable[[str, str, str], str]] = {
    "langchain_rag.py": prepended,
    "llamaindex_query_engine.py": templated,
    "haystack_pipeline.py": prepended,
    "mem0_memory.py": prepended,
    "agno_knowledge.py": prepended,
    "graphiti_memory.py": dated,
    "memos_memory.py": templated,
}
#: Examples of frameworks outside the test environment's extras run only where those are installed (MemOS).
NEEDS = {
    "mem0_memory.py": ("mem0",),
    "agno_knowledge.py": ("agno", "qdrant_client"),
    "graphiti_memory.py": ("graphiti_core", "kuzu"),
    "memos_memory.py": ("memos",),
}
RUNNABLE = [s for s in sorted(FRAMEWORK_EXAMPLES) if all(importlib.util.find_spec(m) for m in NEEDS.get(s, ()))]


def skip_unless_runnable(script: str) -> None:
    if script not in RUNNABLE:
        pytest.skip(f"{script} needs {' and '.join(NEEDS[script])}, which is not installed")


def test_every_example_script_is_covered_here():
    scripts = {path.name for path in EXAMPLES.glob("*.py")}
    assert scripts == {"local.py", "hosted.py", *FRAMEWORK_EXAMPLES}


def example_env(**env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MEMOS_", "MEMRERANKER_"))}
    environment.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", **env)
    return environment


def start_example(script: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=example_env(**env),
        cwd=REPO,
    )


def finish(process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


def run_example(script: str, **env: str) -> str:
    return finish(start_example(script, **env))


def check_results(stdout: str, render: Callable[[str, str, str], str], scorer: Callable[[list[str]], list[float]]):
    """Three results, best first, each with the score the backend gives its rendered text."""
    lines = [match.groups() for match in map(RESULT_LINE.match, stdout.splitlines()) if match]
    assert len(lines) == 3, stdout
    printed = [float(score) for score, *_ in lines]
    assert printed == sorted(printed, reverse=True)
    expected = scorer([render(date, speaker, text) for _, date, speaker, text in lines])
    assert printed == pytest.approx(expected, abs=6e-5)
    return lines


@pytest.fixture(scope="module")
def local_runs(tiny_model_path) -> dict[str, subprocess.Popen]:
    """The four local-backend runs, started together (each loads the model once) and finished by their tests."""
    env = {"MEMRERANKER_BACKEND": "local", "MEMRERANKER_MODEL": str(tiny_model_path), "MEMRERANKER_DEVICE": "cpu"}
    runs = {script: start_example(script, **env) for script in ["local.py", *RUNNABLE]}
    yield runs
    for process in runs.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture
def server():
    with RerankServer(api_key=SECRET) as running:
        yield running


@pytest.mark.slow
def test_local_example(local_runs, tiny_reranker):
    stdout = finish(local_runs["local.py"])
    check_results(stdout, templated, lambda texts: tiny_reranker.score(QUERY, texts))


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(FRAMEWORK_EXAMPLES))
def test_framework_example_with_the_local_backend(script, local_runs, tiny_reranker):
    skip_unless_runnable(script)
    stdout = finish(local_runs[script])
    check_results(stdout, FRAMEWORK_EXAMPLES[script], lambda texts: tiny_reranker.score(QUERY, texts))


def test_hosted_example(server):
    stdout = run_example("hosted.py", MEMOS_BASE_URL=server.base_url, MEMOS_API_KEY=SECRET)
    lines = check_results(stdout, templated, lambda texts: overlap_score(QUERY, texts))
    assert "support group" in lines[0][3]  # the word-overlap server puts the answer first
    assert SECRET not in stdout


def test_hosted_example_explains_a_refused_key(server):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "hosted.py")],
        capture_output=True,
        text=True,
        env=example_env(MEMOS_BASE_URL=server.base_url, MEMOS_API_KEY="sk-wrong"),
        timeout=300,
    )
    assert result.returncode == 1 and "MEMOS_API_KEY" in result.stderr


@pytest.mark.parametrize("script", sorted(FRAMEWORK_EXAMPLES))
def test_framework_example_with_the_hosted_backend(script, server):
    skip_unless_runnable(script)
    env = {"MEMRERANKER_BACKEND": "hosted", "MEMOS_BASE_URL": server.base_url, "MEMOS_API_KEY": SECRET}
    stdout = run_example(script, **env)
    lines = check_results(stdout, FRAMEWORK_EXAMPLES[script], lambda texts: overlap_score(QUERY, texts))
    assert "support group" in lines[0][3]
    assert server.requests, "the example never called the service"
