"""``python -m memreranker_core.cli``: the ``memreranker`` command."""

from memreranker_core.cli import main

raise SystemExit(main())
