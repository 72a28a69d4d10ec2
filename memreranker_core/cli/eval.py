"""``memreranker eval locomo``: the LoCoMo retrieve-then-rerank benchmark from the command line.

Examples:
    memreranker eval locomo --data locomo10.json --first-stage-only              # BM25 alone, no model
    memreranker eval locomo --data locomo10.json --first-stage hybrid --first-stage-only --candidates 100
    memreranker eval locomo --data locomo10.json --model IAAR-Shanghai/MemReranker-4B --device cuda --dtype bfloat16
    memreranker eval locomo --data locomo10.json --pool oracle --model IAAR-Shanghai/MemReranker-4B --device cuda
    memreranker eval locomo --data locomo10.json --backend hosted --model memos-reranker-4b --limit 200
    memreranker eval compare runs/qwen3-4b/results.json runs/memreranker-4b/results.json --out runs/compare

Only the standard library is imported at module level: ranx, bm25s, matplotlib, sentence-transformers and the
backend load when the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from memreranker_core.cli.backend_args import add_backend_arguments, reranker_from_args

DEFAULT_OUT = "locomo-eval"
DEFAULT_COMPARE_OUT = "locomo-compare"


def _argument(parse: Callable[[str], Any], accept: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``parse`` the text, then refuse what ``accept`` does not, saying what was expected."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return convert


_positive_int = _argument(int, lambda value: value >= 1, "a whole number >= 1")
_probability = _argument(float, lambda value: 0.0 <= value <= 1.0, "a number in [0, 1] (scores are P(yes))")
_level = _argument(float, lambda value: 0.0 < value < 1.0, "a significance level strictly between 0 and 1")


def _add_test_arguments(parser: argparse.ArgumentParser) -> None:
    from memreranker_core.eval.significance import DEFAULT_MAX_P, STAT_TESTS

    parser.add_argument(
        "--stat-test",
        choices=STAT_TESTS,
        default="student",
        help="ranx's paired test: student (two-sided paired t-test, default) or fisher (randomization test)",
    )
    parser.add_argument(
        "--max-p", type=_level, default=DEFAULT_MAX_P, help=f"significance level (default {DEFAULT_MAX_P})"
    )


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``eval`` (its ``locomo`` benchmark and ``compare``) on the ``memreranker`` command's subparsers."""
    from memreranker_core.eval.embeddings import DEFAULT_EMBEDDING_MODEL
    from memreranker_core.eval.first_stage import FIRST_STAGES
    from memreranker_core.eval.runner import DEFAULT_TEMPLATE, POOLS

    evaluate = subparsers.add_parser("eval", help="run a retrieval benchmark (LoCoMo) with the model card's metrics")
    benchmarks = evaluate.add_subparsers(dest="benchmark", required=True)
    locomo = benchmarks.add_parser(
        "locomo",
        help="LoCoMo retrieve-then-rerank: first stage top-K, then MemReranker; MAP, MRR, NDCG, R@k, F1",
        description=(
            "For each LoCoMo question, rank its conversation's turns with the first stage, keep the top K, rerank "
            "them, and report the model card's columns overall (categories 1-4), per category and for category 5 "
            "(adversarial) apart, with the candidates' evidence recall and ranx significance tests. Writes "
            "results.json, results.md, chart.png and per_question.jsonl to --out."
        ),
    )
    locomo.add_argument("--data", required=True, metavar="PATH", help="locomo10.json")
    locomo.add_argument("--candidates", type=_positive_int, default=50, metavar="K", help="first-stage top K (50)")
    locomo.add_argument(
        "--first-stage",
        default="bm25",
        metavar="NAME",
        help=f"first-stage retriever: {', '.join(FIRST_STAGES)} (hybrid = reciprocal rank fusion of bm25 and dense)",
    )
    locomo.add_argument(
        "--pool",
        choices=POOLS,
        default="first-stage",
        help="first-stage: the first stage's top K (end to end, default); oracle: every evidence turn plus the first "
        "stage's best other turns, K in all (the reranker alone)",
    )
    locomo.add_argument(
        "--embedding-model",
        default=DEFAULT_EMBEDDING_MODEL,
        metavar="MODEL",
        help=f"sentence-transformers model of the dense and hybrid first stages (default {DEFAULT_EMBEDDING_MODEL})",
    )
    locomo.add_argument(
        "--embedding-device", metavar="DEVICE", help="torch device of the embedding model (default: a GPU if any)"
    )
    locomo.add_argument(
        "--embedding-cache",
        metavar="DIR",
        help="embedding cache (default $MEMRERANKER_CACHE/embeddings, else ~/.cache/memreranker/embeddings)",
    )
    locomo.add_argument(
        "--first-stage-only", action="store_true", help="evaluate the first stage alone (no model, no backend)"
    )
    locomo.add_argument("--threshold", type=_probability, default=0.5, help="P(yes) threshold of the F1 column (0.5)")
    locomo.add_argument("--limit", type=_positive_int, metavar="N", help="only the first N questions with evidence")
    locomo.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder ({DEFAULT_OUT})")
    locomo.add_argument(
        "--template", default=DEFAULT_TEMPLATE, help=f"how a turn is rendered (default {DEFAULT_TEMPLATE!r})"
    )
    locomo.add_argument(
        "--no-image-captions", action="store_true", help="do not append shared images' captions to turn text"
    )
    locomo.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_test_arguments(locomo)
    add_backend_arguments(locomo)
    locomo.set_defaults(handler=run_eval_locomo)

    compare = benchmarks.add_parser(
        "compare",
        help="two saved `eval locomo` runs side by side: both tables, deltas, significance, a chart",
        description=(
            "Read two results.json files (each with its per_question.jsonl beside it), pair them on the questions "
            "both evaluated, and print per group A, B and B - A with ranx significance marks. Writes "
            "comparison.md, comparison.json and comparison.png to --out."
        ),
    )
    compare.add_argument("a", metavar="A", help="results.json of run A (or its folder)")
    compare.add_argument("b", metavar="B", help="results.json of run B (or its folder)")
    compare.add_argument(
        "--out", default=DEFAULT_COMPARE_OUT, metavar="DIR", help=f"output folder ({DEFAULT_COMPARE_OUT})"
    )
    _add_test_arguments(compare)
    compare.set_defaults(handler=run_eval_compare)
    return evaluate


def run_eval_locomo(args: argparse.Namespace, stdout: TextIO, stdin: TextIO) -> int:
    """Handle ``memreranker eval locomo``: run, write the report, print the table and the files written."""
    from memreranker_core.eval.locomo import load_locomo
    from memreranker_core.eval.report import markdown_table, write_report
    from memreranker_core.eval.runner import EvalConfig, run_locomo, summarize

    config = EvalConfig(
        candidates=args.candidates,
        first_stage=args.first_stage,
        threshold=args.threshold,
        limit=args.limit,
        document_template=args.template,
        image_captions=not args.no_image_captions,
        pool=args.pool,
        embedding_model=args.embedding_model,
        embedding_cache=args.embedding_cache,
        embedding_device=args.embedding_device,
        stat_test=args.stat_test,
        max_p=args.max_p,
    )
    data = load_locomo(args.data)
    reranker = None
    if not args.first_stage_only:
        reranker = reranker_from_args(args, document_template=config.document_template)
        reranker.warm_up()  # load the model before the clock starts: latency is per rerank call
    try:
        run = run_locomo(data, reranker, config, progress=False if args.no_progress else None)
    finally:
        if reranker is not None:
            reranker.close()
    summary = summarize(run)
    paths = write_report(run, summary, Path(args.out))
    stdout.write(markdown_table(run, summary))
    stdout.write("\nwrote " + ", ".join(str(path) for path in paths.values()) + "\n")
    return 0


def run_eval_compare(args: argparse.Namespace, stdout: TextIO, stdin: TextIO) -> int:
    """Handle ``memreranker eval compare``: pair two saved runs, print the table, write the files."""
    from memreranker_core.eval.compare import compare_runs, comparison_markdown, load_saved_run, write_comparison

    comparison = compare_runs(load_saved_run(args.a), load_saved_run(args.b), args.stat_test, args.max_p)
    paths = write_comparison(comparison, Path(args.out))
    stdout.write(comparison_markdown(comparison))
    stdout.write("\nwrote " + ", ".join(str(path) for path in paths.values()) + "\n")
    return 0
