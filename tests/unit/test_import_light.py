"""``import memreranker_core`` stays light: no torch, transformers or HTTP client until a backend needs them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "httpx",
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
    assert _loaded_after("from memreranker_core import MemReranker\nMemReranker(backend='local')") == set()


def test_the_hosted_backend_never_imports_torch():
    loaded = _loaded_after(
        "from memreranker_core import MemReranker\n"
        "MemReranker(backend='hosted', api_key='k', base_url='http://127.0.0.1:9')"
    )
    assert not {"torch", "transformers", "sentence_transformers"} & loaded


#: A subprocess that serves one valid vLLM-style ``/rerank`` answer on loopback (stdlib only), scores two documents
#: through the hosted backend, then prints every loaded module.
HOSTED_PROBE = """
import http.server, json, sys, threading

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        results = [{"index": i, "relevance_score": 0.25 + 0.5 * (i % 2)} for i in range(len(body["documents"]))]
        data = json.dumps({"results": results}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
from memreranker_core import MemReranker
reranker = MemReranker(backend="hosted", api_style="vllm", base_url=f"http://127.0.0.1:{server.server_port}")
scores = reranker.score("when?", ["a memory", "another"])
assert [round(s, 6) for s in scores] == [0.25, 0.75], scores
server.shutdown()
print(" ".join(sorted(sys.modules)))
"""

LOCAL_PROBE = """
import sys
from memreranker_core import MemReranker
scores = MemReranker(backend="local", model=sys.argv[1], device="cpu").score("when?", ["a memory", "another"])
assert len(scores) == 2
print(" ".join(sorted(sys.modules)))
"""


def _modules_after(code: str, *args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(result.stdout.split())


def test_hosted_scoring_imports_no_local_backend_module_and_no_torch():
    loaded = _modules_after(HOSTED_PROBE)
    assert "memreranker_core.backends.hosted.backend" in loaded, "the probe must have used the hosted backend"
    local = sorted(
        m for m in loaded if m == "memreranker_core.backends.local" or m.startswith("memreranker_core.backends.local.")
    )
    assert local == [], f"the hosted path imported local modules: {local}"
    assert not {"torch", "transformers", "tokenizers", "sentence_transformers"} & loaded


def test_local_scoring_imports_no_hosted_backend_module(tiny_model_path):
    loaded = _modules_after(LOCAL_PROBE, str(tiny_model_path))
    assert "memreranker_core.backends.local.forward" in loaded and "torch" in loaded
    hosted = sorted(
        m
        for m in loaded
        if m == "memreranker_core.backends.hosted" or m.startswith("memreranker_core.backends.hosted.")
    )
    assert hosted == [], f"the local path imported hosted modules: {hosted}"
