r"""Successive halving of local optimiser runs from many starts (the one copy, used by every multistart).

A start's raw cost says little of where a Levenberg–Marquardt run takes it,
so every start first gets a short run; the best of those continue with more
iterations, and so on:

.. math::

    P_0 = \text{starts}, \qquad
    P_{r+1} = \operatorname{best}_{k_{r+1}}\bigl(\{\operatorname{LM}_{n_r}(p) : p \in P_r\}\bigr),

where :math:`k_r` (how many continue) and :math:`n_r` (iterations of round
:math:`r`) come from a *schedule*.  Runs that fail (``refine`` returns
``None``) drop out.  Two schedules are in use:

* :func:`fixed_schedule` (the closed-form role search,
  :mod:`~hhsym.estimate.search.charge_search`): a share of the pool and an
  iteration count per round, at least ``min_keep`` kept;
* :func:`thirds_schedule` (the generic Boltzmann-family start,
  :mod:`~hhsym.estimate.search.network_start`): the best third continues with twice the
  iterations, until a round refined two or fewer.
"""

from __future__ import annotations

import math

__all__ = ["successive_halving", "fixed_schedule", "thirds_schedule"]


def fixed_schedule(rounds, min_keep=3):
    """Rounds of ``(share, n_iter)``: refine ``max(min_keep, ceil(share * n))`` of the ``n`` ranked (all if share is 1).

    Parameters
    ----------
    rounds : sequence of (float, int)
        Share of the ranked pool refined and Levenberg–Marquardt iterations, per round.
    min_keep : int
        Fewest refined in a round after the first.

    Returns
    -------
    callable
        ``schedule(r, n_ranked, n_last) -> (n_keep, n_iter)`` or ``None`` (stop), for :func:`successive_halving`.
    """
    rounds = tuple((float(share), int(n_iter)) for share, n_iter in rounds)

    def schedule(r, n_ranked, n_last):
        if r >= len(rounds):
            return None
        share, n_iter = rounds[r]
        keep = n_ranked if share >= 1.0 else max(int(min_keep), int(math.ceil(share * n_ranked)))
        return keep, n_iter

    return schedule


def thirds_schedule(n_first, first_iter):
    """All ``n_first`` for ``first_iter`` iterations, then the best third with twice the iterations each round.

    Stops after a round that refined two or fewer starts or left one or none.

    Parameters
    ----------
    n_first : int
        Starts refined in the first round.
    first_iter : int
        Iterations of the first round.

    Returns
    -------
    callable
        ``schedule(r, n_ranked, n_last) -> (n_keep, n_iter)`` or ``None`` (stop).
    """

    def schedule(r, n_ranked, n_last):
        if r == 0:
            return max(1, int(n_first)), int(first_iter)
        if n_ranked <= 1 or n_last <= 2:
            return None
        return max(1, (n_ranked + 2) // 3), int(first_iter) * 2 ** r

    return schedule


def successive_halving(starts, refine, schedule, on_round=None):
    """Refine ``starts`` round by round, the best continuing (module docstring).

    Parameters
    ----------
    starts : sequence of (float, ndarray)
        ``(cost, params)`` pairs in the order they are preferred when costs tie
        (raw starts may carry ``inf``).
    refine : callable
        ``refine(params, n_iter, r, k) -> (cost, params)`` after ``n_iter``
        iterations (``r`` round, ``k`` index in the round, for labels), or
        ``None`` when the run fails.
    schedule : callable
        ``schedule(r, n_ranked, n_last) -> (n_keep, n_iter)`` or ``None`` to stop:
        ``n_ranked`` is the size of the ranking after round ``r - 1`` (the
        starts for ``r = 0``), ``n_last`` how many that round refined
        (:func:`fixed_schedule`, :func:`thirds_schedule`).
    on_round : callable, optional
        ``on_round(r, n_iter, ranked)`` after each round that produced results (progress lines).

    Returns
    -------
    ranked : list of (float, ndarray)
        The last round's results, lowest cost first.  When every run of a
        round fails the halving stops there and ``failed`` tells which round.
    failed : int or None
        The round whose every run failed, or None.
    """
    ranked = list(starts)
    n_last = len(ranked)
    r = 0
    while True:
        step = schedule(r, len(ranked), n_last)
        if step is None:
            return ranked, None
        keep, n_iter = step
        pool = ranked[:keep]
        out = [res for res in (refine(p, n_iter, r, k) for k, (_, p) in enumerate(pool)) if res is not None]
        if not out:
            return ranked, r
        ranked = sorted(out, key=lambda t: t[0])
        n_last = len(pool)
        if on_round is not None:
            on_round(r, n_iter, ranked)
        r += 1
