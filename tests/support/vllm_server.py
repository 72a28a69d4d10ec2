"""A real vLLM server on loopback, started from the second environment that ``.ci/vllm_env.sh`` builds.

``MEMRERANKER_VLLM_PYTHON`` names that environment's Python (``.ci/run`` exports ``$PWD/.venv-vllm/bin/python``);
without it, or when it cannot import vLLM, the tests that need the server skip and say why. The server runs the
tiny random Qwen3 reranker (real Qwen vocabulary, head size 32: vLLM's CPU attention rejects 16) as a yes/no
classifier with the ``--hf-overrides`` of docs/serving.md, in float32 so its scores can be compared with the local
backend's to 1e-5, with an API key (which vLLM checks on ``/v1`` paths only) and the plain dialect's template.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PYTHON_ENV = "MEMRERANKER_VLLM_PYTHON"
SERVED_MODEL_NAME = "memreranker-tiny"
API_KEY = "test-vllm-key-0123456789"
MAX_MODEL_LEN = 1024
STARTUP_SECONDS = 420.0
HF_OVERRIDES = {
    "architectures": ["Qwen3ForSequenceClassification"],
    "classifier_from_token": ["no", "yes"],
    "is_original_qwen3_reranker": True,
}
#: The plain (``/v1/rerank``) dialect's score template, as docs/serving.md gives it. Jinja drops a template's
#: final newline, so the closing blank line is written as an expression.
RERANK_TEMPLATE = (
    "<|im_start|>system\n"
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
    '<Instruct>: {{ instruction | default("Given a web search query, retrieve relevant passages that answer the '
    'query", true) }}\n'
    '<Query>: {{ messages | selectattr("role", "eq", "query") | map(attribute="content") | first }}\n'
    '<Document>: {{ messages | selectattr("role", "eq", "document") | map(attribute="content") | first }}'
    "<|im_end|>\n"
    "<|im_start|>assistant\n"
    "<think>\n\n"
    '</think>{{ "\\n\\n" }}\n'
)


def vllm_python() -> tuple[str | None, str]:
    """The vLLM environment's Python and ``""``, or ``None`` and the reason the server cannot be started."""
    python = os.environ.get(PYTHON_ENV)
    if not python:
        return None, (
            f"{PYTHON_ENV} is not set: build the vLLM environment with `bash .ci/vllm_env.sh` and export "
            f"{PYTHON_ENV}=$PWD/.venv-vllm/bin/python (.ci/run does both)"
        )
    if not Path(python).is_file():
        return None, f"{PYTHON_ENV}={python} does not exist: run `bash .ci/vllm_env.sh`"
    probe = subprocess.run([python, "-c", "import vllm"], capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        return None, f"{python} cannot import vllm: {probe.stderr.strip().splitlines()[-1:]}"
    return python, ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class VllmServer:
    """A running server: ``root`` is ``http://127.0.0.1:PORT`` (``/v1`` is appended by the dialects)."""

    root: str
    process: subprocess.Popen
    log_path: Path
    startup_seconds: float

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def start_server(python: str, model_path: Path, workdir: Path) -> VllmServer:
    """Start vLLM on a free loopback port and wait for ``/health``; raises ``RuntimeError`` with the log's tail."""
    port = free_port()
    template = workdir / "memreranker_rerank.jinja"
    template.write_text(RERANK_TEMPLATE, encoding="utf-8")
    log_path = workdir / "vllm-server.log"
    command = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",  # the `vllm` console script looks up a distribution named `vllm`
        "--model",
        str(model_path),
        "--served-model-name",
        SERVED_MODEL_NAME,
        "--runner",
        "pooling",
        "--hf-overrides",
        json.dumps(HF_OVERRIDES),
        "--chat-template",
        str(template),
        "--dtype",
        "float32",
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--enforce-eager",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
    ]
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)  # the server runs on its own environment only (not, e.g., .ci/run's MemOS beside ours)
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True
        )
    server = VllmServer(f"http://127.0.0.1:{port}", process, log_path, 0.0)
    while time.monotonic() - started < STARTUP_SECONDS:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM exited with {process.returncode} while starting:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.root + "/health", timeout=2) as answer:
                if answer.status == 200:
                    server.startup_seconds = time.monotonic() - started
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(1.0)
    server.stop()
    raise RuntimeError(f"vLLM did not answer /health within {STARTUP_SECONDS:.0f} s:\n{server.log_tail()}")


def server_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="memreranker-vllm-"))
