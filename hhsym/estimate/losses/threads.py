"""Threads for the fit's kernels: traces and window chunks run side by side on every core numba may use.

The loss kernels are compiled with ``nogil=True``, so Python threads run them
truly in parallel.  Work is cut into more pieces than threads (contiguous
chunks of windows) and handed out by a thread pool as threads come free, so a
core shared with another process slows one piece, not half of the work.

The thread count follows :func:`numba.get_num_threads` (``NUMBA_NUM_THREADS``;
``hhsym fit-many`` divides the cores between its workers this way).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba

__all__ = ["n_threads", "parallel_map", "chunks"]

#: Pieces per thread that :func:`chunks` aims for (dynamic balance against a shared core).
PIECES_PER_THREAD = 4

_LOCK = threading.Lock()
_POOLS: dict[int, ThreadPoolExecutor] = {}


def n_threads():
    """Threads the fit's kernels run on: numba's current thread count (at least 1)."""
    return max(1, int(numba.get_num_threads()))


def _pool(n):
    with _LOCK:
        pool = _POOLS.get(n)
        if pool is None:
            pool = _POOLS[n] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="hhsym-fit")
        return pool


def parallel_map(fn, items):
    """``[fn(x) for x in items]``, run on :func:`n_threads` threads when there is more than one item.

    Parameters
    ----------
    fn : callable
        Releases the GIL for most of its time (a ``nogil`` numba kernel) to gain anything.
    items : sequence

    Returns
    -------
    list
        Results in the order of ``items``; an exception in ``fn`` is raised here.
    """
    items = list(items)
    n = n_threads()
    if n == 1 or len(items) < 2 or threading.current_thread().name.startswith("hhsym-fit"):
        return [fn(x) for x in items]  # one thread, or already inside the pool: no nesting, no deadlock
    return list(_pool(n).map(fn, items))


def chunks(n_items, n_total=None):
    """Contiguous ``(start, stop)`` slices cutting ``n_items`` windows into pieces for the pool.

    Parameters
    ----------
    n_items : int
        Windows of one trace.
    n_total : int, optional
        Windows of every trace together (default ``n_items``): a trace gets
        pieces in proportion to its share, about :data:`PIECES_PER_THREAD` per
        thread over all traces.

    Returns
    -------
    list of (int, int)
    """
    n_total = max(n_items, n_total or n_items)
    if n_items == 0:
        return []
    want = PIECES_PER_THREAD * n_threads() if n_threads() > 1 else 1
    k = max(1, min(n_items, round(want * n_items / n_total)))
    edges = [round(i * n_items / k) for i in range(k + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
