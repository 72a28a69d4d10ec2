"""The benchmark report's pieces: the speed targets' verdicts, merged runs, and the time cap of timed calls."""

from __future__ import annotations

import time

import pytest

from benchmarks.report import render_markdown, targets

GPU_4B = {"device": "NVIDIA H100 80GB HBM3", "shape": "4b", "dtype": "bfloat16", "command": "python -m benchmarks.run"}


def _row(pairs_per_s: float, *, mfu: float | None = None, peak: float = 1000.0, diff: float = 0.0) -> dict:
    return {
        "p50_ms": 1000.0 / pairs_per_s,
        "p95_ms": 1000.0 / pairs_per_s,
        "pairs_per_s": pairs_per_s,
        "tokens_per_s": 100 * pairs_per_s,
        "mfu": mfu,
        "peak_memory_mib": peak,
        "memory_over_baseline_mib": 0.0,
        "max_abs_diff_vs_reference": diff,
        "batch_size": 32,
    }


def _result(workload: str, ours: dict, st_best: float, command: str | None = None) -> dict:
    result = {
        "workload": workload,
        "tokens": {"pairs": 1, "mean_pair_tokens": 100.0, "shared_prefix_tokens": 80},
        "systems": {"ours": ours, "st_default": _row(st_best), "st_best": _row(st_best), "card": _row(1.0)},
    }
    result["tokens"].update(ours_equals_card=True, st_equals_card=True)
    if command:
        result["command"] = command
    return result


def _report(env: dict, *results: dict) -> dict:
    env = {"torch_threads": 1, "layers": 36, "hidden": 2560, "iters": 10, "python": "3.11", "torch": "2",
           "transformers": "5", "sentence_transformers": "6", **env}  # fmt: skip
    return {"environment": env, "results": list(results)}


def test_targets_are_judged_on_a_4b_bf16_gpu_run_and_each_miss_is_reported():
    report = _report(
        GPU_4B,
        _result("W1", _row(200.0, diff=0.01), st_best=100.0),  # 2.0x: met
        _result("W2", _row(129.0, mfu=0.49, peak=1000.0), st_best=100.0),  # 1.29x: missed; MFU missed
        _result("W4", _row(10.0), st_best=10.0),  # as fast: met
        _result("W5", _row(500.0, peak=1101.0, diff=0.03), st_best=100.0),  # memory 1.101x: missed; diff missed
    )
    rows = targets(report)
    assert [met for _, _, met in rows] == [True, False, True, False, False, False]
    assert [measured for _, measured, _ in rows][:3] == ["2.00x", "1.29x", "1.00x"]
    assert "**missed**" in render_markdown(report)


def test_targets_are_shown_without_a_verdict_on_cpu_or_smaller_shapes():
    for env in ({**GPU_4B, "device": "CPU: Xeon"}, {**GPU_4B, "shape": "0.6b"}, {**GPU_4B, "dtype": "float32"}):
        report = _report(env, _result("W1", _row(300.0), st_best=100.0), _result("W2", _row(100.0), st_best=100.0))
        rows = targets(report)
        assert all(met is None for _, _, met in rows)
        assert rows[0][1] == "3.00x" and rows[2][1] == "not run"


def test_a_run_split_over_commands_merges_into_one_report_with_each_command():
    run = pytest.importorskip("benchmarks.run")
    earlier = _report({**GPU_4B, "command": "run W1-W4"}, _result("W1", _row(2.0), 1.0), _result("W5", _row(2.0), 1.0))
    later = _report({**GPU_4B, "command": "run W5"}, _result("W5", _row(9.0), 1.0, command="run W5"))
    merged = run.merge_reports(earlier, later)
    assert [r["workload"] for r in merged["results"]] == ["W1", "W5"]
    assert merged["results"][1]["systems"]["ours"]["pairs_per_s"] == 9.0  # the later run replaces its workloads
    markdown = render_markdown(merged)
    assert "Command (W1): `run W1-W4`" in markdown and "Command (W5): `run W5`" in markdown


def test_merging_runs_of_another_shape_or_dtype_is_refused():
    run = pytest.importorskip("benchmarks.run")
    earlier = _report(GPU_4B, _result("W1", _row(2.0), 1.0))
    for change in ({"shape": "0.6b"}, {"dtype": "float32"}, {"device": "NVIDIA H200"}):
        later = _report({**GPU_4B, **change}, _result("W5", _row(9.0), 1.0))
        with pytest.raises(SystemExit, match=next(iter(change))):
            run.merge_reports(earlier, later)


def test_timed_calls_stop_after_max_seconds_but_always_time_at_least_one():
    measure = pytest.importorskip("benchmarks.measure")
    torch = pytest.importorskip("torch")

    def call():
        time.sleep(0.05)
        return [0.5]

    capped = measure.time_calls(call, torch.device("cpu"), iters=100, warmup=1, max_seconds=0.2)
    assert 1 <= len(capped.latencies) <= 5 and capped.scores == (0.5,)
    one = measure.time_calls(call, torch.device("cpu"), iters=3, warmup=1, max_seconds=0.0)
    assert len(one.latencies) == 1
    uncapped = measure.time_calls(call, torch.device("cpu"), iters=3, warmup=0)
    assert len(uncapped.latencies) == 3


def test_the_pass_cost_fit_recovers_fixed_per_token_and_attention_costs_from_timings():
    pass_cost = pytest.importorskip("benchmarks.pass_cost")
    fixed, per_token, per_attended = 3e-3, 2e-5, 1e-9
    samples = [
        (rows, width, 80, fixed + per_token * rows * width + per_attended * rows * width * (80 + width / 2))
        for width in (8, 32, 128, 512)
        for rows in (1, 2, 8, 32)
    ]
    cost = pass_cost.fit_pass_cost(samples)
    assert cost.fixed == pytest.approx(fixed, rel=1e-6) and cost.per_token == pytest.approx(per_token, rel=1e-6)
    assert cost.per_attended == pytest.approx(per_attended, rel=1e-4)
    assert cost.overhead_tokens == pytest.approx(150, rel=1e-6)


def test_overhead_constants_are_solved_from_two_shapes_as_the_planner_prices_them():
    pass_cost = pytest.importorskip("benchmarks.pass_cost")
    from types import SimpleNamespace

    from memreranker_core.backends.local import PASS_OVERHEAD, default_pass_overhead, layer_flops_per_token
    from memreranker_core.testing.random_model import MODEL_SHAPES

    configs = [SimpleNamespace(**MODEL_SHAPES[shape]) for shape in ("tiny", "0.6b", "4b")]
    cuda = SimpleNamespace(type="cuda")
    points = [(layer_flops_per_token(config), default_pass_overhead(cuda, config)) for config in configs]
    tokens, flops_per_layer = pass_cost.solve_overhead_constants(points)
    assert tokens == pytest.approx(PASS_OVERHEAD["cuda"][0], abs=1)  # the defaults round to whole tokens
    assert flops_per_layer == pytest.approx(PASS_OVERHEAD["cuda"][1], rel=1e-3)
