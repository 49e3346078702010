"""Soft time budgets: what is left of one, shared by every stage that takes a ``time_limit``."""

from __future__ import annotations

import time

__all__ = ["seconds_left"]


def seconds_left(time_limit, t0, share=1.0):
    """Seconds left of ``share * time_limit`` since ``t0``.

    Parameters
    ----------
    time_limit : float or None
        Budget (s); ``None``: no budget.
    t0 : float
        Start (s, :func:`time.perf_counter`).
    share : float
        Share of the budget this stage may use up to.

    Returns
    -------
    float or None
        ``None`` without a budget, else the seconds left (0.0 once spent).
    """
    if time_limit is None:
        return None
    return max(share * float(time_limit) - (time.perf_counter() - t0), 0.0)
