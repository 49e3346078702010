r"""Rate networks: positive functions of the membrane potential with explicit equations.

A :class:`RateNetwork` stands in for one unknown rate :math:`r(V)` (1/ms).  It
is a small tanh multilayer perceptron of the normalised potential
:math:`u = (V - c)/s` (mV / mV) with a linear skip term, exponentiated:

.. math:: r(V) = \exp\big(w_L^\top h_{L-1}(u) + b_L + w_\mathrm{skip}\,u\big),

so rates are positive by construction and a purely exponential rate
(:math:`A e^{V/k}`) needs no hidden unit at all.  The normalisation maps the
voltage range the network was trained on, :math:`[c - s, c + s]`, to
:math:`[-1, 1]`.  Outside it the log-rate continues *linearly* with the secant
slope over the last ``delta`` (fraction of the half range) inside it: the
learned rate extrapolates as an exponential, never as whatever a tanh network
happens to do where no data constrained it.

:meth:`RateNetwork.to_sympy` writes the network as an explicit sympy expression
in :data:`hhsym.symbolic.V` with numeric weights (``exp``, ``tanh``,
``Piecewise``), so a model whose rates are networks is an ordinary
:class:`hhsym.ConductanceModel` that code generation and simulation accept.
"""

from __future__ import annotations

import numpy as np
import sympy

from hhsym.estimate.rates.netkernels import log_rate_batch, n_params
from hhsym.symbolic import V as V_SYMBOL

__all__ = ["RateNetwork", "GateNetworks", "GateRate", "TAU_MIN"]

#: Width (in normalised units) of the secant that defines the tail slope.
TAIL_DELTA = 0.05
#: Default floor of a learned gate's time constant (ms): no learned rate exceeds 1/TAU_MIN.
TAU_MIN = 0.01


class RateNetwork:
    """One positive rate function r(V) (1/ms) as a tanh network of V (mV).

    Parameters
    ----------
    hidden : tuple of int
        Hidden-layer widths, e.g. ``(16, 16)``; ``()`` gives a log-linear rate.
    center, scale : float
        Normalisation (mV): ``u = (V - center) / scale``; the trained range
        is ``[center - scale, center + scale]`` and log-linear tails apply beyond.
    theta : ndarray, optional
        Flat parameter vector (see :mod:`hhsym.estimate.rates.netkernels`); zeros if omitted.
    delta : float
        Tail secant width in normalised units.
    """

    def __init__(self, hidden, center, scale, theta=None, delta=TAIL_DELTA):
        self.hidden = tuple(int(h) for h in hidden)
        self.sizes = np.array((1,) + self.hidden + (1,), dtype=np.int64)
        self.center = float(center)
        self.scale = float(scale)
        self.delta = float(delta)
        P = n_params(self.sizes)
        self.theta = np.zeros(P) if theta is None else np.array(theta, dtype=float).reshape(P)

    @property
    def n_params(self):
        """int: number of parameters."""
        return self.theta.shape[0]

    @property
    def bounds(self):
        """(float, float): trained voltage range (mV); log-linear tails beyond."""
        return self.center - self.scale, self.center + self.scale

    def penalised(self):
        """ndarray of bool: which parameters carry the ridge penalty.

        All hidden-layer weights and biases; not the output bias (the rate's
        scale) nor the skip weight (its exponential slope).
        """
        mask = np.ones(self.n_params, dtype=bool)
        mask[-1] = False  # skip
        mask[-2] = False  # output bias
        return mask

    @staticmethod
    def initial_theta(hidden, rng, log_rate0=0.0, out_scale=0.1):
        """Generic random initial parameters (nothing model-specific).

        Hidden units get weights ~ N(0, 2²) on the input and biases
        ~ U(-2, 2), so their kinks spread over the normalised range; deeper
        layers use Glorot-normal weights; the output layer is small
        (``out_scale``), the output bias is ``log_rate0`` (log 1/ms) and the
        skip weight 0, so the initial rate is nearly constant.

        Parameters
        ----------
        hidden : tuple of int
        rng : numpy.random.Generator
        log_rate0 : float
            Initial log-rate (log of 1/ms).
        out_scale : float
            Standard deviation of the output-layer weights.

        Returns
        -------
        ndarray
        """
        sizes = (1,) + tuple(hidden) + (1,)
        parts = []
        for l in range(len(sizes) - 1):
            n_in, n_out = sizes[l], sizes[l + 1]
            if l == len(sizes) - 2:
                W = rng.normal(0.0, out_scale, (n_out, n_in))
                b = np.full(n_out, float(log_rate0))
            elif l == 0:
                W = rng.normal(0.0, 2.0, (n_out, n_in))
                b = rng.uniform(-2.0, 2.0, n_out)
            else:
                W = rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), (n_out, n_in))
                b = rng.normal(0.0, 0.1, n_out)
            parts += [W.ravel(), b]
        parts.append(np.zeros(1))
        return np.concatenate(parts)

    # ------------------------------------------------------------------ evaluation
    def log_rate(self, V_values, grad=False):
        """Log-rate ``log r(V)`` and its derivative in V.

        Parameters
        ----------
        V_values : array_like
            Membrane potentials (mV).
        grad : bool
            Also return d log r / d theta.

        Returns
        -------
        f : ndarray
            log r (log of 1/ms), shape of ``V_values``.
        dfdV : ndarray
            d log r / dV (1/mV).
        G : ndarray, only if ``grad``
            (n, n_params) derivatives w.r.t. the parameters.
        """
        Vs = np.asarray(V_values, dtype=float)
        f, d, G = log_rate_batch(self.theta, self.sizes, Vs.ravel(), self.center, self.scale,
                                 self.delta, bool(grad))
        if grad:
            return f.reshape(Vs.shape), d.reshape(Vs.shape), G
        return f.reshape(Vs.shape), d.reshape(Vs.shape)

    def __call__(self, V_values):
        """Rate r(V) (1/ms) at ``V_values`` (mV)."""
        return np.exp(self.log_rate(V_values)[0])

    # ------------------------------------------------------------------ symbolic
    def output_sympy(self):
        """The network output ``f(V)`` (log-rate) as a sympy expression in ``V``.

        Returns
        -------
        sympy.Expr
            ``Piecewise((tail_lo, V < lo), (tail_hi, V > hi), (mlp(u), True))``
            with ``u = (V - center)/scale``.
        """
        F = sympy.Float
        u = (V_SYMBOL - F(self.center)) / F(self.scale)
        th = self.theta
        acts = [u]
        p = 0
        sizes = [int(v) for v in self.sizes]
        for l in range(len(sizes) - 1):
            n_in, n_out = sizes[l], sizes[l + 1]
            W = th[p:p + n_in * n_out].reshape(n_out, n_in)
            b = th[p + n_in * n_out:p + n_out * (n_in + 1)]
            p += n_out * (n_in + 1)
            new = []
            for i in range(n_out):
                z = sympy.Add(*[F(W[i, j]) * acts[j] for j in range(n_in)], F(b[i]))
                new.append(sympy.tanh(z) if l < len(sizes) - 2 else z)
            acts = new
        body = acts[0] + F(th[p]) * u
        lo, hi = self.bounds
        f_lo = self.log_rate(np.array([lo - 1.0]))[1][0]  # tail slope (1/mV)
        f_hi = self.log_rate(np.array([hi + 1.0]))[1][0]
        v_lo = self.log_rate(np.array([lo]))[0][0]
        v_hi = self.log_rate(np.array([hi]))[0][0]
        tail_lo = F(v_lo) + F(f_lo) * (V_SYMBOL - F(lo))
        tail_hi = F(v_hi) + F(f_hi) * (V_SYMBOL - F(hi))
        return sympy.Piecewise((tail_lo, V_SYMBOL < F(lo)), (tail_hi, V_SYMBOL > F(hi)), (body, True))

    def to_sympy(self):
        """The rate as an explicit sympy expression in ``V`` with numeric weights.

        Returns
        -------
        sympy.Expr
            ``exp(Piecewise((tail_lo, V < lo), (tail_hi, V > hi), (mlp(u), True)))``
            with ``u = (V - center)/scale``; agrees with :meth:`__call__` to
            rounding.
        """
        return sympy.exp(self.output_sympy())

    # ------------------------------------------------------------------ io
    def state(self):
        """dict of arrays describing the network exactly (for saving)."""
        return {"hidden": np.array(self.hidden, dtype=np.int64),
                "norm": np.array([self.center, self.scale, self.delta]),
                "theta": self.theta.copy()}

    @classmethod
    def from_state(cls, state):
        """Rebuild a network from :meth:`state` output (bit-exact)."""
        center, scale, delta = (float(x) for x in state["norm"])
        return cls(tuple(int(h) for h in state["hidden"]), center, scale, state["theta"], delta)

    def __repr__(self):
        lo, hi = self.bounds
        return f"RateNetwork(hidden={self.hidden}, range=[{lo:.1f}, {hi:.1f}] mV, {self.n_params} params)"


class GateNetworks:
    r"""One gate's kinetics as two networks: steady state and time constant.

    .. math::

        x_\infty(V) = \sigma\big(f_x(V)\big), \qquad
        \tau(V) = \tau_\min + e^{f_\tau(V)}, \qquad
        \alpha = x_\infty/\tau, \quad \beta = (1 - x_\infty)/\tau ,

    with :math:`f_x, f_\tau` tanh networks of the normalised potential (the
    :class:`RateNetwork` body, linear tails beyond the trained range).  Both
    rates are positive and bounded by :math:`1/\tau_\min` by construction, the
    gate stays in (0, 1), and the two quantities the data constrain
    separately (where a gate settles, how fast) are separate networks.

    Parameters
    ----------
    hidden : tuple of int
        Hidden-layer widths of both networks.
    center, scale : float
        Normalisation (mV), as for :class:`RateNetwork`.
    theta_x, theta_tau : ndarray, optional
        Parameters of :math:`f_x` (logit x_inf) and :math:`f_\tau` (log of
        (tau - tau_min)/ms); zeros if omitted.
    tau_min : float
        Time-constant floor (ms), default :data:`TAU_MIN`.
    delta : float
        Tail secant width in normalised units.
    """

    def __init__(self, hidden, center, scale, theta_x=None, theta_tau=None, tau_min=TAU_MIN, delta=TAIL_DELTA):
        self.xnet = RateNetwork(hidden, center, scale, theta_x, delta)
        self.tnet = RateNetwork(hidden, center, scale, theta_tau, delta)
        self.tau_min = float(tau_min)

    hidden = property(lambda self: self.xnet.hidden)
    center = property(lambda self: self.xnet.center)
    scale = property(lambda self: self.xnet.scale)
    delta = property(lambda self: self.xnet.delta)
    bounds = property(lambda self: self.xnet.bounds)

    @property
    def theta(self):
        """ndarray: ``[theta_x, theta_tau]`` (a copy; the layout the estimation kernels use)."""
        return np.concatenate([self.xnet.theta, self.tnet.theta])

    def x_inf(self, V_values):
        """Steady state x_inf(V) (dimensionless) at ``V_values`` (mV)."""
        f = self.xnet.log_rate(V_values)[0]
        return np.exp(-np.logaddexp(0.0, -f))

    def tau(self, V_values):
        """Time constant tau(V) (ms) at ``V_values`` (mV)."""
        return self.tau_min + np.exp(np.minimum(self.tnet.log_rate(V_values)[0], 700.0))

    def log_rates(self, V_values):
        """(log alpha, log beta) (log of 1/ms) at ``V_values`` (mV), computed stably."""
        fx = self.xnet.log_rate(V_values)[0]
        lt = np.logaddexp(np.log(self.tau_min), self.tnet.log_rate(V_values)[0])
        return -np.logaddexp(0.0, -fx) - lt, -np.logaddexp(0.0, fx) - lt

    def rates(self, V_values):
        """(alpha, beta) (1/ms) at ``V_values`` (mV)."""
        la, lb = self.log_rates(V_values)
        return np.exp(la), np.exp(lb)

    def to_sympy(self):
        """(alpha, beta) as explicit sympy expressions in ``V`` with numeric weights.

        ``alpha = 1 / ((1 + exp(-f_x)) (tau_min + exp(f_tau)))`` and
        ``beta = 1 / ((1 + exp(f_x)) (tau_min + exp(f_tau)))`` (no ``1 - x``
        cancellation); they agree with :meth:`rates` to rounding.
        """
        fx = self.xnet.output_sympy()
        tau = sympy.Float(self.tau_min) + sympy.exp(self.tnet.output_sympy())
        return 1 / ((1 + sympy.exp(-fx)) * tau), 1 / ((1 + sympy.exp(fx)) * tau)

    def state(self):
        """dict of arrays describing the pair exactly (for saving)."""
        return {"hidden": np.array(self.hidden, dtype=np.int64),
                "norm": np.array([self.center, self.scale, self.delta, self.tau_min]),
                "theta_x": self.xnet.theta.copy(), "theta_tau": self.tnet.theta.copy()}

    @classmethod
    def from_state(cls, state):
        """Rebuild from :meth:`state` output (bit-exact)."""
        center, scale, delta, tau_min = (float(x) for x in state["norm"])
        return cls(tuple(int(h) for h in state["hidden"]), center, scale, state["theta_x"], state["theta_tau"],
                   tau_min, delta)

    def __repr__(self):
        lo, hi = self.bounds
        return (f"GateNetworks(hidden={self.hidden}, range=[{lo:.1f}, {hi:.1f}] mV, "
                f"tau_min={self.tau_min:g} ms, {2 * self.xnet.n_params} params)")


class GateRate:
    """One rate (alpha or beta, 1/ms) of a :class:`GateNetworks` pair, as a function of V (mV).

    What :attr:`RateEstimator.networks_ <hhsym.estimate.RateEstimator>` holds
    per rate name.  It is *not* a log-rate :class:`RateNetwork` (it has no
    ``theta`` of its own): the parameters live in :attr:`gate`.

    Parameters
    ----------
    gate : GateNetworks
    kind : {"alpha", "beta"}
    """

    def __init__(self, gate, kind):
        if kind not in ("alpha", "beta"):
            raise ValueError(f"kind must be 'alpha' or 'beta', got {kind!r}")
        self.gate = gate
        self.kind = kind

    @property
    def bounds(self):
        """(float, float): trained voltage range (mV)."""
        return self.gate.bounds

    def log_rate(self, V_values):
        """log of the rate (log of 1/ms) at ``V_values`` (mV)."""
        return self.gate.log_rates(V_values)[0 if self.kind == "alpha" else 1]

    def __call__(self, V_values):
        """Rate (1/ms) at ``V_values`` (mV)."""
        return np.exp(self.log_rate(V_values))

    def to_sympy(self):
        """The rate as a sympy expression in ``V`` (see :meth:`GateNetworks.to_sympy`)."""
        return self.gate.to_sympy()[0 if self.kind == "alpha" else 1]

    def __repr__(self):
        return f"GateRate({self.kind}, {self.gate!r})"
