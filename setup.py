"""The index page's long description: README.md with its links to files of the repository made plain paths.

Everything else is in pyproject.toml. README.md links ``docs/*.md``, ``BENCHMARKS.md`` and ``examples/`` by relative
paths, which work in the repository and break on a package index (there is no repository URL to make them absolute).
For the index, each such link becomes its path in backticks, under a note saying where those files are; in-page
anchors lose their link too. ``python setup.py`` is not how to build: use ``python -m build`` or ``pip``.
"""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import setup

#: A Markdown link whose target is not a URL: ``[text](target)``.
RELATIVE_LINK = re.compile(r"\[([^\]]+)\]\((?![a-z][a-z0-9+.-]*:)([^)\s]+)\)")
NOTE = "> Paths such as `docs/frameworks.md` name files of the source repository, also shipped in the sdist.\n\n"


def index_readme(text: str) -> str:
    """``text`` with every relative link replaced by plain text that names the file, and a note saying where."""

    def plain(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        path = target.split("#", 1)[0]
        return label if not path or f"`{path}`" in label else f"{label} (`{path}`)"

    title, _, rest = text.partition("\n")
    return f"{title}\n\n{NOTE}{RELATIVE_LINK.sub(plain, rest).lstrip()}"


setup(
    long_description=index_readme((Path(__file__).parent / "README.md").read_text(encoding="utf-8")),
    long_description_content_type="text/markdown",
)
