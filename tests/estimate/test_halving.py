"""hhsym.estimate.search.halving: the one successive halving of multistart searches."""

import math

import numpy as np

from hhsym.estimate.search.halving import fixed_schedule, successive_halving, thirds_schedule


def _quadratic_refine(calls):
    """A 'run' that halves the distance to 0 once per iteration; params are 1-vectors, cost their square."""

    def refine(p, n_iter, r, k):
        calls.append((r, k, n_iter))
        if not np.isfinite(p[0]):
            return None
        q = p * 0.5 ** n_iter
        return float(q[0] ** 2), q

    return refine


def test_fixed_schedule_refines_the_declared_shares():
    calls = []
    starts = [(math.inf, np.array([float(x)])) for x in range(1, 13)]
    ranked, failed = successive_halving(starts, _quadratic_refine(calls), fixed_schedule(((1.0, 1), (1 / 3, 2), (0.0, 4))))
    assert failed is None
    rounds = [sum(1 for r, _, _ in calls if r == j) for j in range(3)]
    assert rounds == [12, 4, 3]  # all; ceil(12/3) = 4; the minimum of 3
    assert {n for r, _, n in calls if r == 2} == {4}
    assert [c for c, _ in ranked] == sorted(c for c, _ in ranked) and len(ranked) == 3
    assert ranked[0][1][0] == 1.0 * 0.5 ** 7  # the smallest start, refined 1 + 2 + 4 iterations


def test_thirds_schedule_doubles_iterations_until_two_remain():
    calls = []
    starts = [(float(x), np.array([float(x)])) for x in range(1, 41)]
    ranked, failed = successive_halving(starts, _quadratic_refine(calls), thirds_schedule(32, 3))
    sizes = [sum(1 for r, _, _ in calls if r == j) for j in range(5)]
    assert sizes == [32, 11, 4, 2, 0]  # (n + 2) // 3 each round; stops after refining two
    assert [n for r, k, n in calls if k == 0] == [3, 6, 12, 24]
    assert failed is None and ranked[0][1][0] == 0.5 ** (3 + 6 + 12 + 24)


def test_a_round_where_every_run_fails_stops_and_keeps_the_previous_ranking():
    starts = [(5.0, np.array([np.nan])), (6.0, np.array([np.nan]))]
    ranked, failed = successive_halving(starts, _quadratic_refine([]), thirds_schedule(2, 3))
    assert failed == 0 and ranked == starts
