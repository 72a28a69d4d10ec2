"""Exact mode at scale, authenticated: two real vLLM-CPU replicas behind a real ``vllm-router``, all on loopback.

The set-up is docs/serving.md's ("Scaling out"): each replica runs the key guard (``--middleware
memreranker_core.serving.key_guard.KeyGuard``, the replicas' key in ``VLLM_API_KEY``); the router holds that key
(``--api-key``: it never passes a client's ``Authorization`` on) and checks replicas every
``ROUTER_HEALTH_INTERVAL`` s; the key proxy (``memreranker_core.serving.key_proxy``) checks the clients' key in
front of the router. The tests pin that no path the client uses answers without the right key, that scores through
the router equal the local backend's and come from both replicas, and that killing a replica under concurrent
callers loses or corrupts no call, and that the restarted replica is used again.
Skips, saying why, without the vLLM environment (``.ci/vllm_env.sh`` builds it with the router and the guard).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from memreranker_core import MemReranker
from memreranker_core.errors import AuthenticationError, HostedBackendError
from tests.support.vllm_server import (
    API_KEY,
    MAX_MODEL_LEN,
    REPLICA_KEY,
    ROUTER_HEALTH_INTERVAL,
    ROUTER_HEALTH_SUCCESSES,
    SERVED_MODEL_NAME,
    launch_server,
    server_workdir,
    start_key_proxy,
    start_router,
    vllm_model_dir,
    vllm_python,
    vllm_router,
)

QUERY = "When did Caroline go to the LGBTQ support group?"
MEMORIES = [
    "Caroline went to the LGBTQ support group on 7 May 2023.",
    "Melanie painted a sunrise by the lake last year.",
    "Caroline is researching adoption agencies.",
    "It rained all weekend, so they stayed in.",
]
CALLERS = 8
#: Each caller keeps calling until the kill, then makes this many more calls (at most MAX_CALLS_EACH in all).
CALLS_AFTER_KILL = 4
MAX_CALLS_EACH = 100
WRONG_KEY = "wrong-key-0123456789abcdef"


@pytest.fixture(scope="module")
def model_path():
    return vllm_model_dir()


@pytest.fixture(scope="module")
def stack(model_path):
    """Two guarded replicas (started side by side), the router and the key proxy; all stopped at the end."""
    python, reason = vllm_python()
    if python is None:
        pytest.skip(reason)
    router, reason = vllm_router(python)
    if router is None:
        pytest.skip(reason)
    workdir = server_workdir()
    started = []
    try:
        replicas = [
            launch_server(python, model_path, workdir, guard_key=REPLICA_KEY, name=f"replica-{name}") for name in "ab"
        ]
        started += replicas
        for replica in replicas:
            replica.wait_until_healthy()
        front = start_router(router, replicas, workdir, replica_key=REPLICA_KEY)
        started.append(front)
        proxy = start_key_proxy(python, front.root, workdir, client_key=API_KEY)
        started.append(proxy)
        yield {"replicas": replicas, "router": front, "proxy": proxy}
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture(scope="module")
def local(model_path):
    return MemReranker(backend="local", model=str(model_path), device="cpu", max_length=MAX_MODEL_LEN).warm_up()


def exact(root, model_path, api_key=API_KEY, **options):
    return MemReranker(
        backend="hosted",
        api_style="vllm",
        base_url=root,
        model=SERVED_MODEL_NAME,
        tokenizer=str(model_path),
        api_key=api_key,
        **{"max_length": MAX_MODEL_LEN, **options},
    )


def worst_gap(got, want):
    assert len(got) == len(want)
    return max(abs(a - b) for a, b in zip(got, want, strict=True))


def refused_without_retry(reranker):
    with pytest.raises(AuthenticationError) as caught:
        reranker.score(QUERY, MEMORIES)
    assert caught.value.status_code == 401
    stats = reranker.backend.stats()
    assert stats.get("retries", 0) == 0 and stats.get("requests", 1) == 1, stats  # a 401 is final: no retry loop
    return caught.value


def status_of(url, method="GET", key=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_each_replica_refuses_a_missing_or_wrong_key_on_every_path_and_scores_with_its_own(stack, model_path, local):
    classify = {"model": SERVED_MODEL_NAME, "input": [[1, 2, 3]], "use_activation": False}
    for replica in stack["replicas"]:
        for key in (None, WRONG_KEY, API_KEY):  # the clients' key is not the replicas'
            error = refused_without_retry(exact(replica.root, model_path, api_key=key))
            assert WRONG_KEY not in str(error) and API_KEY not in str(error)
            plain = MemReranker(
                backend="hosted", api_style="vllm", base_url=replica.root, model=SERVED_MODEL_NAME, api_key=key
            )
            refused_without_retry(plain)
            for path in ("/classify", "/pooling", "/tokenize", "/v1/rerank", "/rerank", "/score"):
                assert status_of(replica.root + path, "POST", key, classify) == 401, path
            for path in ("/v1/models", "/version", "/ping", "/load", "/docs", "/openapi.json"):
                assert status_of(replica.root + path, "GET", key) == 401, path
        for path in ("/health", "/metrics"):  # the router's health check and Prometheus, without the key
            assert status_of(replica.root + path) == 200, path
        assert status_of(replica.root + "/classify", "POST", REPLICA_KEY, classify) == 200
        own = exact(replica.root, model_path, api_key=REPLICA_KEY)
        assert worst_gap(own.score(QUERY, MEMORIES), local.score(QUERY, MEMORIES)) <= 1e-5


def test_the_router_refuses_a_client_without_the_right_key_as_an_authentication_error(stack, model_path):
    proxy = stack["proxy"].root
    for key in (None, WRONG_KEY, REPLICA_KEY):  # the router's own key is not a client key either
        error = refused_without_retry(exact(proxy, model_path, api_key=key))
        assert WRONG_KEY not in str(error) and REPLICA_KEY not in str(error)
        plain = MemReranker(backend="hosted", api_style="vllm", base_url=proxy, model=SERVED_MODEL_NAME, api_key=key)
        refused_without_retry(plain)
    assert status_of(proxy + "/health") == 200


def test_exact_mode_through_the_router_equals_local_and_reaches_both_replicas(stack, model_path, local):
    documents = [
        f"Memory {i}: Caroline {'went to the group' if i % 7 == 0 else 'did something else'}" for i in range(40)
    ]
    hosted = exact(stack["proxy"].root, model_path, max_documents_per_request=4, max_concurrency=4)
    before = [replica.classify_requests() for replica in stack["replicas"]]
    got = hosted.score(QUERY, documents)
    assert worst_gap(got, local.score(QUERY, documents)) <= 1e-5
    order = [result.index for result in hosted.rerank(QUERY, documents)]
    assert order == [result.index for result in local.rerank(QUERY, documents)]
    served = [replica.classify_requests() - was for replica, was in zip(stack["replicas"], before, strict=True)]
    assert sum(served) >= 20 and all(count >= 5 for count in served), served  # 2 x 10 requests, round robin


def test_a_replica_killed_under_concurrent_callers_loses_no_call_and_is_used_again_after_its_restart(
    stack, model_path, local
):
    documents = [f"{memory} (#{i})" for i, memory in enumerate(MEMORIES * 3)]
    want = local.score(QUERY, documents)
    hosted = exact(stack["proxy"].root, model_path, max_documents_per_request=3, max_concurrency=4, backoff_factor=0.2)
    outcomes: list[tuple[str, object, bool]] = []  # (kind, scores or error, started after the kill)
    started = [0]
    lock = threading.Lock()
    some_done, killed = threading.Event(), threading.Event()

    def caller():
        after = 0
        for _ in range(MAX_CALLS_EACH):
            late = killed.is_set()
            with lock:
                started[0] += 1
            try:
                outcome = ("scores", hosted.score(QUERY, documents))
            except HostedBackendError as error:  # a typed error is allowed; anything else fails the test
                outcome = ("error", error)
            except Exception as error:  # recorded, then asserted on below
                outcome = ("untyped", error)
            with lock:
                outcomes.append((*outcome, late))
                if len(outcomes) >= CALLERS:
                    some_done.set()
            after += late
            if after >= CALLS_AFTER_KILL:
                return

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    victim, survivor = stack["replicas"]
    assert some_done.wait(timeout=300)
    victim.kill()  # SIGKILL to the replica and its engine: calls in flight on it fail mid-request
    killed.set()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)

    assert len(outcomes) == started[0]  # none lost: every call started came back, with scores or an error
    assert sum(late for *_, late in outcomes) >= CALLERS * CALLS_AFTER_KILL  # many calls ran with a replica dead
    untyped = [repr(value) for kind, value, _ in outcomes if kind == "untyped"]
    assert not untyped, untyped
    scored = [value for kind, value, _ in outcomes if kind == "scores"]
    assert all(worst_gap(scores, want) <= 1e-5 for scores in scored)  # none wrong
    errors = [repr(value) for kind, value, _ in outcomes if kind == "error"]
    print(f"replica killed: {len(scored)} calls scored, {len(errors)} typed errors, {hosted.backend.stats()}")
    assert len(scored) > len(errors), errors  # the client's retries reach the live replica

    victim.launch()  # the same port: the router knows it by its URL
    victim.wait_until_healthy()
    # Back in rotation after ROUTER_HEALTH_SUCCESSES good health checks: a bounded number of calls, one every
    # fifth of the interval, over a few intervals.
    rounds = 5 * (ROUTER_HEALTH_SUCCESSES + 2)
    calls = 0
    for _ in range(rounds):
        calls += 1
        assert worst_gap(hosted.score(QUERY, documents[:3]), want[:3]) <= 1e-5
        if victim.classify_requests() > 0:
            break
        threading.Event().wait(ROUTER_HEALTH_INTERVAL / 5)
    assert victim.classify_requests() > 0, victim.log_tail()
    print(f"restarted replica served again after {calls} calls, {ROUTER_HEALTH_INTERVAL / 5} s apart")
    assert survivor.process.poll() is None
