r"""Metrics: rate-function errors, steady-state and time-constant curves, spike coincidence.

Definitions follow ``shared/DESIGN.md``:

* **rate error** — :math:`\max_V |r_\mathrm{learned}(V) - r_\mathrm{true}(V)| / r_\mathrm{true}(V)`
  over a 1 mV grid of a stated range, per rate function;
* **coincidence factor** :math:`\Gamma` (Kistler, Gerstner & van Hemmen 1997,
  Neural Comput 9:1015) between two spike trains with a coincidence window
  :math:`\pm\Delta`:

  .. math:: \Gamma = \frac{N_\mathrm{coinc} - \langle N_\mathrm{coinc}\rangle}
            {\tfrac12 (N_1 + N_2)} \frac{1}{1 - 2\nu_1\Delta},

  with :math:`\langle N_\mathrm{coinc}\rangle = 2\nu_1\Delta N_2` the
  coincidences expected by chance from a Poisson train of rate :math:`\nu_1 = N_1/T`
  (train 1 is the reference); 1 for identical trains, about 0 for chance.
"""

from __future__ import annotations

import numpy as np

from hhsym.errors import InvalidArgumentError, invalid
from hhsym.model import gating_from_rates, partner_rate

__all__ = ["rate_errors", "band_coverage", "steady_state_curves", "time_constant_curves", "spike_times",
           "coincidence_factor"]


def _rates_of(obj, V):
    if hasattr(obj, "predict_rates"):
        return obj.predict_rates(V)
    if hasattr(obj, "evaluate_rates"):
        return obj.evaluate_rates(V)
    raise invalid("model", obj, "a ConductanceModel or a fitted RateEstimator")


def _grid(v_range, step):
    try:
        lo, hi = (float(v) for v in v_range)
    except (TypeError, ValueError):
        raise invalid("v_range", v_range, "a pair (V_low, V_high) in mV") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise invalid("v_range", v_range, "a finite pair with V_low < V_high (mV)")
    if not (isinstance(step, (int, float)) and np.isfinite(step) and step > 0):
        raise invalid("step", step, "a positive number (mV)")
    n = int(np.floor((hi - lo) / step + 1e-9))
    return lo + step * np.arange(n + 1)


def _check_share(min_share):
    if not (isinstance(min_share, (int, float)) and 0 <= min_share < 1):
        raise invalid("min_share", min_share, "a fraction in [0, 1), e.g. 0.05")


def _matters(rates, k, min_share):
    """Where rate ``k`` is at least ``min_share`` of its gate's alpha + beta (boolean over the grid)."""
    partner = partner_rate(k)
    total = rates[k] + rates[partner] if partner in rates else rates[k]
    return rates[k] >= min_share * total


def rate_errors(model, true_model, v_range=(-75.0, 20.0), step=1.0, min_share=None):
    """Maximum relative error of each rate function over a voltage grid.

    Parameters
    ----------
    model : ConductanceModel or fitted RateEstimator
        The learned rates.
    true_model : ConductanceModel
        Reference rates (same rate names).
    v_range : (float, float)
        Voltage range (mV), both ends included.
    step : float
        Grid spacing (mV).
    min_share : float, optional
        If given (e.g. 0.05), only grid points where the true rate is at
        least this fraction of its gate's :math:`\alpha + \beta` count: the
        range where the rate matters to the gate's dynamics (a rate far
        below its partner barely affects the data there).  ``nan`` for a
        rate that never reaches the share on the grid.

    Returns
    -------
    dict
        Rate name -> max |r - r_true| / r_true over the grid (dimensionless).

    Examples
    --------
    >>> from hhsym.library import hodgkin_huxley
    >>> rate_errors(hodgkin_huxley(), hodgkin_huxley())["alpha_m"]
    0.0
    """
    grid = _grid(v_range, step)
    a = _rates_of(model, grid)
    b = _rates_of(true_model, grid)
    missing = sorted(set(b) - set(a))
    if missing:
        raise InvalidArgumentError(f"invalid model: it lacks the rate(s) {missing} of true_model")
    if min_share is None:
        return {k: float(np.max(np.abs(a[k] - b[k]) / np.abs(b[k]))) for k in b}
    _check_share(min_share)
    out = {}
    for k in b:
        keep = _matters(b, k, min_share)
        err = np.abs(a[k] - b[k]) / np.abs(b[k])
        out[k] = float(np.max(err[keep])) if keep.any() else float("nan")
    return out


def band_coverage(estimator, true_model, v_range=(-75.0, 20.0), step=1.0, min_share=0.05, z=1.96):
    r"""Share of a voltage grid where the true rates lie inside a fit's bands ``rate ± z std``.

    Parameters
    ----------
    estimator : fitted RateEstimator
        With rate uncertainty (``predict_rates(V, return_std=True)``).
    true_model : ConductanceModel
        Reference rates (same rate names).
    v_range : (float, float)
        Voltage range (mV), both ends included.
    step : float
        Grid spacing (mV).
    min_share : float
        Only grid points where the true rate is at least this fraction of its gate's
        :math:`\alpha + \beta` count (as in :func:`rate_errors`).
    z : float
        Band half-width in standard deviations (1.96: 95 % for a Gaussian).

    Returns
    -------
    float
        Fraction in [0, 1] of the (rate, voltage) points counted; a calibrated 95 % band covers ~0.95.
    """
    grid = _grid(v_range, step)
    _check_share(min_share)
    rates, std = estimator.predict_rates(grid, return_std=True)
    truth = _rates_of(true_model, grid)
    inside = [(np.abs(rates[k] - r) <= z * std[k])[_matters(truth, k, min_share)] for k, r in truth.items()]
    return float(np.mean(np.concatenate(inside)))


def steady_state_curves(model, V):
    r"""Gate steady states :math:`x_\infty = \alpha/(\alpha+\beta)` at ``V`` (mV).

    Parameters
    ----------
    model : ConductanceModel or fitted RateEstimator
    V : array_like
        Membrane potentials (mV).

    Returns
    -------
    dict
        Gate name -> ndarray (dimensionless).
    """
    gating = gating_from_rates(_rates_of(model, np.asarray(V, dtype=float)))
    return {g: xinf for g, (xinf, _) in gating.items()}


def time_constant_curves(model, V):
    r"""Gate time constants :math:`\tau_x = 1/(\alpha+\beta)` (ms) at ``V`` (mV).

    Parameters
    ----------
    model : ConductanceModel or fitted RateEstimator
    V : array_like
        Membrane potentials (mV).

    Returns
    -------
    dict
        Gate name -> ndarray (ms).
    """
    gating = gating_from_rates(_rates_of(model, np.asarray(V, dtype=float)))
    return {g: tau for g, (_, tau) in gating.items()}


def spike_times(t, V, threshold=0.0):
    """Times of upward crossings of ``threshold``, linearly interpolated.

    Parameters
    ----------
    t : array_like
        Sample times (ms), increasing.
    V : array_like
        Membrane potential (mV), same length as ``t``.
    threshold : float
        Crossing level (mV).

    Returns
    -------
    ndarray
        Spike times (ms): for each k with ``V[k] < threshold <= V[k+1]`` the
        time where the straight line between the samples reaches ``threshold``.
    """
    t = np.asarray(t, dtype=float)
    V = np.asarray(V, dtype=float)
    if t.ndim != 1 or V.shape != t.shape:
        raise invalid("V", f"shape {V.shape}", f"a 1-D array of the same shape as t {t.shape}")
    k = np.nonzero((V[:-1] < threshold) & (V[1:] >= threshold))[0]
    frac = (threshold - V[k]) / (V[k + 1] - V[k])
    return t[k] + frac * (t[k + 1] - t[k])


def coincidence_factor(spikes_a, spikes_b, window=2.0, duration=None):
    """Kistler et al. (1997) coincidence factor Γ between two spike trains.

    Parameters
    ----------
    spikes_a : array_like
        Reference spike times (ms), e.g. of the true model.
    spikes_b : array_like
        Spike times (ms) to compare, e.g. of the learned model.
    window : float
        Coincidence half-window Δ (ms): a spike of ``b`` within ±Δ of a spike
        of ``a`` is a coincidence (each reference spike counted at most once).
    duration : float
        Length T of the recording (ms); required (sets the chance rate).

    Returns
    -------
    float
        Γ: 1 for identical trains, about 0 for chance agreement; 1.0 when both
        trains are empty, 0.0 when exactly one is.
    """
    a = np.sort(np.asarray(spikes_a, dtype=float).ravel())
    b = np.sort(np.asarray(spikes_b, dtype=float).ravel())
    if not (isinstance(window, (int, float)) and np.isfinite(window) and window > 0):
        raise invalid("window", window, "a positive number (ms)")
    if duration is None or not (isinstance(duration, (int, float)) and np.isfinite(duration) and duration > 0):
        raise invalid("duration", duration, "the recording length T, a positive number (ms)")
    if a.size == 0 and b.size == 0:
        return 1.0
    if a.size == 0 or b.size == 0:
        return 0.0
    used = np.zeros(a.size, dtype=bool)
    n_coinc = 0
    for s in b:  # greedy one-to-one matching, nearest unused reference spike
        lo, hi = np.searchsorted(a, s - window), np.searchsorted(a, s + window, side="right")
        cand = [i for i in range(lo, hi) if not used[i]]
        if cand:
            i = min(cand, key=lambda i: abs(a[i] - s))
            used[i] = True
            n_coinc += 1
    rate = a.size / float(duration)
    expected = 2.0 * rate * window * b.size
    norm = 1.0 - 2.0 * rate * window
    if norm <= 0:
        raise invalid("window", window, f"a window with 2*rate*window < 1 (rate {rate:g}/ms)")
    return float((n_coinc - expected) / (0.5 * (a.size + b.size)) / norm)
