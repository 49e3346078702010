"""Dynamic scheduling of blocks of neurons over numba's threads.

``numba.prange`` splits its iterations statically: with two threads, each
gets half of the blocks up front, and when another process takes a core
from one of them the whole call waits for that thread.  The fixed-step
driver instead starts one worker per thread (a ``prange`` over the
workers), and each worker claims the next unprocessed block from a shared
counter with an atomic fetch-and-add (:func:`next_block`) until none is
left: a thread that runs slower simply processes fewer blocks.  Which
thread integrates a block does not change its arithmetic, so results are
bit-identical to a serial run.  Works with every threading layer
(workqueue, omp, tbb).
"""

from __future__ import annotations

import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["next_block"]


@intrinsic
def _fetch_add_first(typingctx, counter):
    """Atomically add 1 to ``counter[0]`` (int64 array) and return its previous value."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [context.get_constant(types.intp, 0)])
        one = context.get_constant(types.int64, 1)
        return builder.atomic_rmw("add", ptr, one, "monotonic")

    return sig, codegen


if numba.config.DISABLE_JIT:  # pure-Python debugging: one thread, no atomicity needed

    def _fetch_add_first(counter):  # noqa: F811
        value = int(counter[0])
        counter[0] = value + 1
        return value


@numba.njit(cache=True, inline="always")
def next_block(counter):
    """Claim the next block: return ``counter[0]`` and increment it, atomically.

    Parameters
    ----------
    counter : numpy.ndarray of int64, shape (1,)
        Shared by every worker of one parallel loop; start it at 0.

    Returns
    -------
    int
        Index of the claimed block (claim until it reaches the number of blocks).
    """
    return _fetch_add_first(counter)
