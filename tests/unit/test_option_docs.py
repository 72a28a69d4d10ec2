"""The docs' option tables are generated from the options declarations: each marked table in README.md and docs/
equals what ``option_docs`` renders from ``specs()``, and one command regenerates them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from memreranker_core.backends import BACKENDS
from memreranker_core.backends.option_docs import TABLE, main, option_table, update_tables
from memreranker_core.backends.options import BackendOptions, option, whole
from tests.conftest import REPO_ROOT

DOCUMENTS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
REGENERATE = "python -m memreranker_core.backends.option_docs README.md docs/serving.md"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_every_option_table_in_the_docs_matches_its_declaration(path):
    text = path.read_text(encoding="utf-8")
    assert update_tables(text) == text, f"{path.name}: an option table is stale; run {REGENERATE}"


def test_each_backend_has_its_generated_table_in_the_docs():
    tables = {
        match.group("backend"): path.name
        for path in DOCUMENTS
        for match in TABLE.finditer(path.read_text(encoding="utf-8"))
    }
    assert tables == {"local": "README.md", "hosted": "serving.md"} and set(tables) == set(BACKENDS)


@dataclass(frozen=True, repr=False)
class DemoOptions(BackendOptions):
    BACKEND = "demo"
    retries: int = option(3, check=whole(0), cli_type=int, help="demo: retries | after the first attempt")
    mode: str = option("fast", choices=("fast", "slow"), help="demo: how")
    token: str | None = option(None, secret=True, cli=False, help="demo: a token")


def test_a_table_has_every_option_with_its_default_flag_and_help():
    assert option_table(DemoOptions).splitlines() == [
        "| option | default | flag | meaning |",
        "| --- | --- | --- | --- |",
        "| `retries` | `3` | `--retries` | retries \\| after the first attempt |",
        '| `mode` | `"fast"` | `--mode` | how; one of `"fast"`, `"slow"` |',
        "| `token` | `None` | none | a token; secret: never shown or serialized |",
    ]


def test_the_regenerate_command_rewrites_a_stale_table_and_check_reports_it(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text("Intro.\n\n<!-- options-table: local -->\n| stale |\n<!-- /options-table -->\n\nEnd.\n")
    assert main(["--check", str(page)]) == 1 and "| stale |" in page.read_text()
    assert main([str(page)]) == 0
    text = page.read_text()
    assert "| stale |" not in text and "`--max-length`" in text and text.endswith("<!-- /options-table -->\n\nEnd.\n")
    assert main(["--check", str(page)]) == 0
    (tmp_path / "plain.md").write_text("No table.\n")
    assert main(["--check", str(tmp_path / "plain.md")]) == 1
    assert "no <!-- options-table" in capsys.readouterr().err
