"""torch's CPU threads for one local call: ``num_threads`` while the call runs, set back when it ends.

torch sizes its intra-op thread pool per process (each thread starts from the process-wide setting), one thread
per core by default. On a machine whose cores other processes also use, fewer threads run faster, as each parallel
region waits for its slowest thread: on 2 shared cores with one more busy process, a 50-memory call (W1) took
33.1 s with two threads and 20.0 s with one (BENCHMARKS.md, "Threads on a shared machine"). The local backend
changes nothing unless ``num_threads`` is given; given, it applies from a call's first forward pass to its last,
then the setting in force before comes back. Other torch work in the same process during the call runs with it
too.

Example:
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["torch_threads"]


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(count)``, then set back the count in force before.

    Args:
        count: Threads for the block; None leaves torch's setting alone.
    """
    before = torch.get_num_threads()
    if count is None or count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
