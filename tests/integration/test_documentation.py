"""Every ``python`` and ``bash`` block of README.md and docs/*.md runs, offline, as a reader would run it.

Blocks run in document order with Sybil (Python blocks share one namespace per document; each bash block runs as
one script in a scratch folder holding the files the commands name). The local backend is the tiny random model
(``MEMRERANKER_MODEL``), hosted URLs point at a loopback server (``MEMOS_BASE_URL``), and a few named stand-ins
cover blocks that show only the reranker step (``tests/support/doc_snippets.py``). A block that cannot run offline
carries ``<!-- skip: next "why" -->`` in the document; every skip must give its reason.
"""

from __future__ import annotations

import re
import unittest

import pytest

from tests.conftest import LOCOMO_PATH, REPO_ROOT
from tests.support.doc_snippets import (
    API_KEY,
    documentation_env,
    environment,
    run_shell_block,
    stand_ins,
    write_input_files,
)
from tests.support.rerank_server import RerankServer

sybil = pytest.importorskip("sybil")
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser  # noqa: E402

DOCUMENTS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
_SKIP_WITHOUT_REASON = re.compile(r"<!--\s*skip:\s*(next|start)\s*-->")


def test_every_skip_in_the_documents_gives_its_reason():
    for path in DOCUMENTS:
        assert not _SKIP_WITHOUT_REASON.search(path.read_text(encoding="utf-8")), f"{path.name}: a skip without reason"


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_documented_blocks_run(path, tiny_model_path, tmp_path, monkeypatch):
    workdir = tmp_path / "work"
    workdir.mkdir()
    write_input_files(workdir, LOCOMO_PATH if LOCOMO_PATH.is_file() else None)
    monkeypatch.chdir(workdir)
    with RerankServer(api_key=API_KEY) as server:
        env = documentation_env(tiny_model_path, server)
        parsers = [
            PythonCodeBlockParser(),
            CodeBlockParser(language="bash", evaluator=lambda example: run_shell_block(example.parsed, workdir, env)),
            SkipParser(),
        ]
        document = sybil.Sybil(parsers=parsers).parse(path)
        document.namespace.update(stand_ins(tiny_model_path, server), LOCOMO=LOCOMO_PATH.is_file())
        ran, skipped = 0, []
        with environment(env):
            for example in document.examples():
                try:
                    example.evaluate()
                except unittest.SkipTest as reason:
                    skipped.append((example.line, str(reason)))
                    continue
                except Exception as exc:
                    raise AssertionError(f"{path.name}, line {example.line}: {exc}") from exc
                ran += 1
    assert ran or skipped, f"{path.name} has no code block"
