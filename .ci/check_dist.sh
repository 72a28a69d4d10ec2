#!/usr/bin/env bash
# The artifacts as a package index and a user get them: build the sdist from a clean copy of the repository and the
# wheel from that sdist, `twine check --strict` both, check their file lists, then install the wheel (not editable)
# into a fresh environment with every framework extra and the frameworks' own integrations that share our namespace
# packages, and import every adapter from it. No torch: the adapters import none (the `local` extra is left out).
#
# The clean copy is the work tree's tracked and untracked-but-not-ignored files (in a CI checkout: HEAD); set
# CHECK_DIST_REF=HEAD (or any commit) to export that commit with `git archive` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONPATH  # .ci/run points it at .memos-site: nothing outside the fresh environments may leak in
repo="$PWD"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$SECONDS

mkdir "$work/src"
if [[ -n "${CHECK_DIST_REF:-}" ]]; then
    git archive --format=tar "$CHECK_DIST_REF" | tar -x -C "$work/src"
else
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do if [[ -e "$f" ]]; then printf '%s\0' "$f"; fi; done \
        | tar -c --null -T - | tar -x -C "$work/src"
fi

python3 -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet --upgrade pip build twine
# No argument to build: the wheel is built from the sdist, so a file missing from the sdist fails here.
"$work/tools/bin/python" -m build --outdir "$work/dist" "$work/src" >"$work/build.log" 2>&1 || { tail -50 "$work/build.log"; exit 1; }
"$work/tools/bin/python" -m twine check --strict "$work"/dist/*
echo "check_dist: built and checked in $((SECONDS - start)) s"

"$work/tools/bin/python" - "$work/dist" "$repo/LICENSE" <<'EOF'
import re, sys, tarfile, zipfile
from pathlib import Path

dist, license_text = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes()
wheel, = dist.glob("*.whl")
sdist, = dist.glob("*.tar.gz")
names = set(zipfile.ZipFile(wheel).namelist())
problems = []
info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
# Namespace levels shared with the frameworks' own integration packages: an __init__.py there would shadow them.
for namespace in ("llama_index", "llama_index/postprocessor", "haystack_integrations",
                  "haystack_integrations/components", "haystack_integrations/components/rankers"):
    if f"{namespace}/__init__.py" in names:
        problems.append(f"wheel: {namespace}/__init__.py would shadow every other integration in that namespace")
# Every top-level regular package (an __init__.py whose parent has none) ships py.typed.
packages = {n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")}
tops = sorted(p for p in packages if p.rsplit("/", 1)[0] not in packages or "/" not in p)
for package in tops:
    if f"{package}/py.typed" not in names:
        problems.append(f"wheel: {package}/py.typed missing")
expected_tops = {"memreranker_core", "langchain_memreranker", "llama_index/postprocessor/memreranker",
                 "haystack_integrations/components/rankers/memreranker", "mem0_memreranker", "graphiti_memreranker",
                 "memos_memreranker", "agno_memreranker"}
if set(tops) != expected_tops:
    problems.append(f"wheel: packages {tops}, expected {sorted(expected_tops)}")
if zipfile.ZipFile(wheel).read(f"{info}/licenses/LICENSE") != license_text:
    problems.append("wheel: dist-info/licenses/LICENSE is not the repository's LICENSE")
for line in ("License-Expression: Apache-2.0", "License-File: LICENSE"):
    if line not in metadata.splitlines():
        problems.append(f"wheel METADATA lacks {line!r}")
if "memreranker = memreranker_core.cli:main" not in zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode():
    problems.append("wheel: the memreranker console script is missing")
if any(n.startswith(("tests/", "benchmarks/", "examples/", "docs/")) for n in names):
    problems.append("wheel: carries tests, benchmarks, examples or docs")
# The long description is what the index shows: no link may point at a repository-relative path.
description = metadata.split("\n\n", 1)[1]
relative = re.findall(r"\]\((?![a-z][a-z0-9+.-]*:)([^)\s]+)\)", description)
if relative:
    problems.append(f"long description: repository-relative links {relative} break on an index page")
members = {m.split("/", 1)[1] for m in tarfile.open(sdist).getnames() if "/" in m}
for required in ("LICENSE", "README.md", "BENCHMARKS.md", "docs/frameworks.md", "setup.py", "pyproject.toml",
                 "examples/agno_knowledge.py", "integrations/agno_memreranker/py.typed"):
    if required not in members:
        problems.append(f"sdist: {required} missing")
if problems:
    sys.exit("check_dist: " + "\n  ".join(["FAILED", *problems]))
print(f"check_dist: {wheel.name} ({wheel.stat().st_size // 1024} KB, {len(names)} files) and {sdist.name}: ok")
EOF

installing=$SECONDS
# The wheel, not editable, beside the frameworks and their own integrations in the shared namespaces.
python3 -m venv "$work/fresh"
wheel="$(ls "$work"/dist/*.whl)"
"$work/fresh/bin/python" -m pip install --quiet --upgrade pip
"$work/fresh/bin/python" -m pip install --quiet "$wheel[langchain,llamaindex,haystack,mem0,graphiti,agno]" \
    "llama-index-postprocessor-cohere-rerank" "jina-haystack"
"$work/fresh/bin/python" -m pip check
echo "check_dist: installed in $((SECONDS - installing)) s"
cd "$work"  # not the repository: nothing may be imported from the source tree
"$work/fresh/bin/python" - "$work/fresh" <<'EOF'
import importlib, sys

fresh = sys.argv[1]
for module, name in [
    ("memreranker_core", "MemReranker"),
    ("langchain_memreranker", "MemRerankerCompressor"),
    ("llama_index.postprocessor.memreranker", "MemRerankerPostprocessor"),
    ("haystack_integrations.components.rankers.memreranker", "MemRerankerRanker"),
    ("mem0_memreranker", "MemRerankerMem0"),
    ("graphiti_memreranker", "MemRerankerCrossEncoder"),
    ("agno_memreranker", "MemRerankerAgno"),
    # the frameworks' own integrations in the same namespaces still import beside ours
    ("llama_index.postprocessor.cohere_rerank", "CohereRerank"),
    ("haystack_integrations.components.rankers.jina", "JinaRanker"),
]:
    loaded = importlib.import_module(module)
    getattr(loaded, name)
    assert loaded.__file__.startswith(fresh), f"{module} imported from {loaded.__file__}, not the fresh environment"
assert "torch" not in sys.modules, "an adapter imported torch"
print("check_dist: every adapter imports from the installed wheel")
EOF
"$work/fresh/bin/memreranker" --help >/dev/null
echo "check_dist: done in $((SECONDS - start)) s"
