r"""The network route's last stage: rate networks by maximum likelihood for noise on V, with error bars.

The charge-balance stages of :class:`~hhsym.estimate.RateEstimator` put the
*measured* V inside the ionic current; with noise on V that is an
errors-in-variables problem and its minimum moves away from the true rates
(``benchmarks/bench_identifiability.py``).  The output error does not: the
model runs freely over windows tiling every recording, each from its own
fitted initial state, and is compared with every sample — for Gaussian noise
of standard deviation :math:`\sigma` on V the negative log-likelihood is
:math:`N\,c/\sigma^2` with :math:`c` the half mean square over the :math:`N`
compared samples.  :func:`maximum_likelihood` fits the networks' weights by
it, continued from short windows to long
(:func:`hhsym.estimate.search.continuation.continue_windows`; exact forward
sensitivities, initial states eliminated window by window).

Each length's fit takes Levenberg–Marquardt steps with geodesic acceleration
(:mod:`hhsym.estimate.optimise.window_lm`): the likelihood's minima lie in
narrow curved valleys (e.g. m's and h's amplitudes trading against each other
in m³h), where plain steps alternate between a refused Gauss–Newton step and a
short damped one.  On HH (8 x 1 s at 20 kHz, 0.3 mV, 10 ms windows, from where
the plain continuation stopped, cost 0.0440784; the truth's basin 0.0440554) 30
accelerated iterations reached 0.0440687, 30 plain ones 0.0440736 and 150 plain
ones 0.0440664.

Free-form curves have flat directions under noise, so the loss carries a
roughness prior on every gate's curves (logit x_inf and log tau on a 1 mV
grid over the data's range; :meth:`~hhsym.estimate.rates.base.GateParametrisation.roughness`):
second differences with prior standard deviation ``smoothing`` (per mV²),

.. math::

    c(\theta) + \frac{\sigma^2}{2 N s^2} \sum_k \big(\Delta^2 c_k(\theta)\big)^2 ,

i.e. a Gaussian prior expressed in the loss's own units.  The posterior
covariance of the weights is the Laplace approximation
:math:`(\sigma^2/N)\,(S + J_r^T J_r)^{-1}` with :math:`S` the Gauss–Newton
information of the weights with every window's state profiled out
(:func:`hhsym.estimate.optimise.window_lm.schur_information`) and
:math:`J_r` the prior's Jacobian; :func:`rate_std` propagates it to the rates
(delta method).

*The bridge.*  The charge-balance start is far off under noise (HH, 2 x 1 s at
20 kHz, 0.3 mV: splines refined by charge balance from the *true* rates end
1-4.8x off where the rates matter).  Its bias is the noise inside the ionic
current: over a window the current's integral carries
:math:`\int G(t)\,\varepsilon(t)\,dt / C_m`, large where the conductance
:math:`G` is (after spikes, g_K n^4), and the fit lowers it by closing the
gates there; smoothing V does not help (the integral is itself a low-pass
filter).  From such a start the free-state output error stays in the start's
basin (4.8x -> 2.2x after 1, 2.5, 5 ms windows).  So from such a start
(:func:`hhsym.estimate.search.network_start.spline_likelihood`) the stage first
runs ``bridge`` windows whose only free initial state is the potential, the gates
starting at the gate-driven pass's values (``free_states="V"`` of
:class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem`): the model's own V
drives the current, and the gates, pinned to the recording, cannot absorb
rate errors in free offsets.  On the case above it took the start from 4.8x to
0.61x off in two lengths (1 and 2.5 ms), and the free-state windows after it
ended at 1.0x (``notes/issue16.md``, session 7).  Over longer windows the
pinned gates no longer fit (a potential-only 5 ms window failed), so the bridge
stays short.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from hhsym.errors import IdentifiabilityWarning

from hhsym.estimate.budget import seconds_left
from hhsym.estimate.losses.trajectory import TrajectoryProblem
from hhsym.estimate.optimise.window_lm import schur_information
from hhsym.estimate.search.continuation import continue_windows

__all__ = ["ML_WINDOWS", "BRIDGE_WINDOWS", "SMOOTHING", "roughness_grid", "maximum_likelihood", "fit_stage", "rate_std",
           "rate_covariance", "gate_rate_std", "gate_rate_covariance"]

#: Window lengths (ms) of the maximum-likelihood continuation.
ML_WINDOWS = (2.5, 5.0, 10.0)
#: Window lengths (ms) of the bridge before it, with the potential as the only free initial state.
BRIDGE_WINDOWS = (1.0, 2.5)
#: Prior standard deviation of the curves' second differences on a 1 mV grid (logit units and log ms per mV²).
SMOOTHING = 0.01


def roughness_grid(v_range, spacing=1.0):
    """Uniform potentials (mV) ``spacing`` apart over ``v_range`` (at least 5) on which roughness is penalised."""
    lo, hi = float(v_range[0]), float(v_range[1])
    return np.linspace(lo, hi, max(5, int(round((hi - lo) / spacing)) + 1))


def _prior(rates, grid, weight, n_extra=0):
    """``penalty(p, jac)`` of the roughness prior with weight ``weight`` (cost units); ``p`` may end with
    ``n_extra`` parameters that are not the rates' (the scalars), on which it does not act."""
    w = np.sqrt(weight)
    n = rates.n_params

    def penalty(p, jac):
        if not jac:
            return w * rates.roughness(p[:n], grid, False)
        r, J = rates.roughness(p[:n], grid, True)
        return w * r, w * np.hstack([J, np.zeros((J.shape[0], n_extra))])
    return penalty


def _posterior_inverse(H, rcond=1e-12):
    """The inverse of a Gauss–Newton information ``H`` on its informed directions, always positive semi-definite.

    ``H`` is scaled to a unit diagonal first (weights and scalars differ by orders of magnitude), then
    inverted by its eigen-decomposition, dropping eigenvalues below ``rcond`` times the largest:
    flat directions (e.g. a saturated hidden unit, whose weights move neither the residuals nor the
    rates) have no posterior, and a plain inverse of the near-singular matrix turns rounding into
    negative variances (seen: the scalars' on a noise-free fit with free g_L, E_L, C_m).
    """
    d = np.sqrt(np.maximum(np.diag(H), np.finfo(float).tiny))
    Hs = H / np.outer(d, d)
    w, U = np.linalg.eigh(0.5 * (Hs + Hs.T))
    keep = w > rcond * max(float(w.max()), 0.0)
    return ((U[:, keep] / w[keep]) @ U[:, keep].T) / np.outer(d, d)


def maximum_likelihood(rates, template, data, theta, noise, v_range, windows=ML_WINDOWS, smoothing=SMOOTHING,
                       max_iter=30, time_limit=None, scalars=None, bridge=(), with_covariance=True, states=None):
    """Fit a rate parametrisation's weights by output error with a roughness prior, and their covariance.

    Parameters
    ----------
    rates : GateParametrisation
        E.g. :class:`~hhsym.estimate.rates.network_rates.NetworkRates`.
    template : ConductanceModel
        Structure, conductances (mS/cm²), reversal potentials (mV), C_m (µF/cm²), powers.
    data : list of (dt, V, I)
        Step (ms), V (mV), I (µA/cm²) per trace; any sampling rate.
    theta : ndarray
        Starting weights (e.g. the charge-balance fit).
    noise : float
        Standard deviation of the noise on V (mV), e.g. :func:`hhsym.estimate.checks.noise_level`.
    v_range : (float, float)
        Voltage range (mV) of the roughness grid (the data's).
    windows : sequence of float
        Window lengths (ms), shortest first.
    smoothing : float
        Prior standard deviation of the curves' second differences per 1 mV² (module docstring).
    max_iter : int
        Levenberg–Marquardt iterations per window length.
    time_limit : float, optional
        Soft budget (s).
    scalars : ScalarParameters, optional
        Whole-cell scalars fitted with the weights (:mod:`hhsym.estimate.rates.scalars`); ``theta`` then
        ends with their internal coordinates, and so do ``run.p`` and the covariance.
    bridge : sequence of float
        Window lengths (ms) run first with the potential as the only free initial state (module
        docstring), e.g. :data:`BRIDGE_WINDOWS` from a charge-balance start on noisy data; ``()``
        (default) none: from a good start the bridge's own bias (its gates are driven by the noisy
        V) moves the rates (from the true rates on 2 x 60 ms at 0.3 mV: 31 % -> 46 % off).  A bridge
        length that fails (non-finite) ends the bridge; the stage goes on from the last one that ran
        (``theta`` if none did).
    with_covariance : bool
        Also compute the covariance (else ``None`` is returned for it).
    states : ndarray, optional
        Starting initial states of the first length of ``windows`` (:func:`continue_windows`), e.g.
        the ``run.states`` of an earlier fit over the same data whose last length was that one.
        Ignored with a ``bridge`` (its states have only the potential; ``windows`` then start from
        the recording).

    Returns
    -------
    run : WindowRun
        The continuation (:class:`~hhsym.estimate.search.continuation.WindowRun`); ``run.cost`` is
        ``inf`` if the model failed (non-finite) on the recordings.
    covariance : ndarray (n_params, n_params) or None
        Laplace posterior covariance of the weights at the fit (None if the fit failed); zero for
        parameters of fixed gates (``rates.free_columns`` lists the others).
    """
    grid = roughness_grid(v_range)
    sigma2 = max(float(noise), 1e-3) ** 2
    # the weight needs the number of compared samples (the same for every length up to the window starts)
    n = TrajectoryProblem(rates, template, data, window=float(windows[0])).n_residuals
    weight = sigma2 / (n * float(smoothing) ** 2)
    n_sc = 0 if scalars is None else scalars.n_params
    prior = _prior(rates, grid, weight, n_sc)
    t0 = time.perf_counter()
    if len(bridge):
        pinned = continue_windows(rates, template, data, theta, bridge, penalty=prior, max_iter=max_iter,
                                  time_limit=time_limit, scalars=scalars, free_states="V", geodesic=True)
        theta = pinned.p  # the last length that ran (finite), or theta
    left = seconds_left(time_limit, t0)
    run = continue_windows(rates, template, data, theta, windows, penalty=prior, max_iter=max_iter,
                           time_limit=left, scalars=scalars, states=None if len(bridge) else states, geodesic=True)
    if not np.isfinite(run.cost) or not with_covariance:
        return run, None
    tp = run.problem
    # parameters no residual depends on (fixed gates' columns) have no posterior: zero rows and columns
    free = np.concatenate([np.asarray(getattr(rates, "free_columns", np.arange(rates.n_params)), dtype=np.int64),
                           rates.n_params + np.arange(n_sc, dtype=np.int64)])
    S = schur_information(tp.blocks(run.p, run.states, True), run.p, free)
    _, Jr = prior(run.p, True)
    H = S + Jr[:, free].T @ Jr[:, free]
    sub = _posterior_inverse(H) * sigma2 / tp.n_residuals
    cov = np.zeros((rates.n_params + n_sc, rates.n_params + n_sc))
    cov[np.ix_(free, free)] = 0.5 * (sub + sub.T)
    return run, cov


def fit_stage(rates, template, data, theta, noise, v_range, windows, smoothing, max_iter, time_limit, verbose=0,
              scalars=None, states=None):
    """:func:`maximum_likelihood` as the estimator's last stage: the start kept (with a warning) if it fails.

    Parameters
    ----------
    rates, template, data, theta, noise, v_range, windows, smoothing, max_iter, time_limit, scalars, states :
        As for :func:`maximum_likelihood`.
    verbose : int
        Print a progress line.

    Returns
    -------
    theta : ndarray
        The fitted weights, or ``theta`` itself if the model failed (non-finite) when run freely.
    covariance : ndarray or None
    """
    if verbose:
        print(f"[hhsym.fit] stage 3: maximum likelihood over {', '.join(f'{w:g}' for w in windows)} ms "
              f"windows (noise {noise:.2g} mV)", flush=True)
    run, cov = maximum_likelihood(rates, template, data, theta, noise, v_range, windows, smoothing,
                                  max_iter=max_iter, time_limit=time_limit, scalars=scalars, states=states)
    if not np.isfinite(run.cost):
        warnings.warn("maximum-likelihood stage skipped: the model fails (non-finite) when run freely "
                      "over the windows; returning the charge-balance fit", IdentifiabilityWarning, stacklevel=4)
        return theta, None
    return run.p, cov


def rate_covariance(rates, p, covariance, V):
    r"""Covariance (1/ms²) of every gate's alpha and beta at ``V`` (mV), by the delta method.

    Parameters
    ----------
    rates : GateParametrisation
    p : ndarray
        Weights.
    covariance : ndarray (n_params, n_params)
    V : ndarray (K,)
        Potentials (mV).

    Returns
    -------
    ndarray (n_gates, 2K, 2K)
        Per gate, the covariance of :math:`(\alpha(V_1..V_K), \beta(V_1..V_K))` stacked (gates are
        independent blocks: each gate's weights are its own).
    """
    _, _, da, db = rates.rate_jacobian(p, V)
    npg = rates.n_per_gate
    out = np.empty((rates.n_gates, 2 * len(V), 2 * len(V)))
    for j in range(rates.n_gates):
        C = covariance[j * npg:(j + 1) * npg, j * npg:(j + 1) * npg]
        D = np.concatenate([da[j], db[j]])
        out[j] = D @ C @ D.T
    return out


def rate_std(rates, p, covariance, V):
    """Standard deviations (1/ms) of every gate's alpha and beta at ``V`` (mV), by the delta method.

    Parameters
    ----------
    rates, p, covariance, V :
        As for :func:`rate_covariance`.

    Returns
    -------
    sd_alpha, sd_beta : ndarray (n_gates, len(V))
        The square roots of :func:`rate_covariance`'s diagonal.
    """
    var = np.diagonal(rate_covariance(rates, p, covariance, V), axis1=1, axis2=2)
    sd = np.sqrt(np.maximum(var, 0.0))
    return sd[:, :len(V)], sd[:, len(V):]


def gate_rate_std(gates, names, covariance, V):
    """Standard deviations (1/ms) of fitted gate networks' rates at ``V`` (mV), by name.

    Parameters
    ----------
    gates : list of GateNetworks
        The fitted gates, in the order of ``covariance``'s blocks.
    names : list of str
        Gate names.
    covariance : ndarray
        Covariance of the networks' flat weights (:func:`maximum_likelihood`).
    V : array_like
        Potentials (mV).

    Returns
    -------
    dict
        ``alpha_<gate>``, ``beta_<gate>`` -> ndarray shaped like ``V``.
    """
    from hhsym.estimate.rates.network_rates import NetworkRates

    nr, p = NetworkRates.from_gates(gates)
    V = np.asarray(V, dtype=float)
    sd_a, sd_b = rate_std(nr, p, covariance, np.atleast_1d(V).ravel())
    out = {}
    for j, g in enumerate(names):
        out[f"alpha_{g}"], out[f"beta_{g}"] = sd_a[j].reshape(V.shape), sd_b[j].reshape(V.shape)
    return out


def gate_rate_covariance(gates, names, covariance, V):
    """Covariance (1/ms²) of fitted gate networks' rates at ``V`` (mV), per gate by name.

    Parameters
    ----------
    gates, names, covariance :
        As for :func:`gate_rate_std`.
    V : array_like (K,)
        Potentials (mV).

    Returns
    -------
    dict
        Gate name -> ndarray (2K, 2K): the covariance of its ``alpha`` at ``V`` then its ``beta`` at ``V``.
    """
    from hhsym.estimate.rates.network_rates import NetworkRates

    nr, p = NetworkRates.from_gates(gates)
    cov = rate_covariance(nr, p, covariance, np.atleast_1d(np.asarray(V, dtype=float)).ravel())
    return dict(zip(names, cov))
