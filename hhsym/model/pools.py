r"""Non-gate states: an intracellular calcium pool with its own ODE.

A :class:`CalciumPool` adds the state :math:`[\mathrm{Ca}]_i` (mM, named by
the pool, default ``"Ca"``) to a model.  It is driven by the currents of the
channels it names and relaxes to a resting level (Destexhe et al. 1994):

.. math::

    \frac{d[\mathrm{Ca}]}{dt} = -\frac{5}{F\,d}\, I_{\mathrm{Ca}}
        + \frac{[\mathrm{Ca}]_\infty - [\mathrm{Ca}]}{\tau}

with :math:`I_{\mathrm{Ca}}` the sum of the driving channels' currents
(µA/cm², inward negative), :math:`F` Faraday's constant (C/mol), :math:`d`
the depth of the submembrane shell (µm) and :math:`\tau` the removal time
constant (ms).  The factor :math:`5/(F d) = 10/(2 F d)` converts µA/cm²
into mM/ms for a divalent ion in a shell of depth ``d``.  Unlike NEURON's
``cad.mod`` the drive is not rectified (an outward calcium current, which
needs :math:`V > E_{Ca}`, lowers the concentration): the right-hand side
stays smooth for the adaptive integrators.

The right-hand side is linear in :math:`[\mathrm{Ca}]`, so the pool has an
exact relaxation form :math:`d[\mathrm{Ca}]/dt = K (T - [\mathrm{Ca}])` with
:math:`K = 1/\tau` and :math:`T = [\mathrm{Ca}]_\infty - 5 \tau I_{Ca}/(F d)`,
which the exponential-Euler kernel advances exactly for frozen ``I_Ca``
(like the gates).

Gate rates may use the pool's state symbol (e.g. ``"0.03*(Ca/0.025)^2"``);
the gates of the channels that *drive* a pool may not (calcium-dependent
inactivation is not supported: the resting state would need a fixed point).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from hhsym.errors import ModelError, invalid
from hhsym.symbolic import check_identifier

__all__ = ["CalciumPool", "FARADAY", "check_pools", "check_pool_drivers", "channel_current", "pool_current",
           "pool_symbols"]

#: Faraday's constant (C/mol), CODATA 2018 (exact: N_A e).
FARADAY = 96485.33212


@dataclass(frozen=True)
class CalciumPool:
    """A submembrane calcium pool: state ``name`` (mM) driven by channel currents.

    Parameters
    ----------
    name : str
        Name of the state, e.g. ``"Ca"``; gate rates refer to the
        concentration (mM) by this name.  Its parameters are ``tau_<name>``
        (ms), ``depth_<name>`` (µm) and ``<name>_inf`` (mM).
    channels : sequence of str
        Names of the channels whose currents carry the ion into the pool
        (e.g. ``("CaL",)``); at least one.
    tau : float
        Removal time constant (ms, > 0).
    depth : float
        Depth of the submembrane shell (µm, > 0).
    Ca_inf : float
        Resting concentration (mM, >= 0).

    Examples
    --------
    >>> pool = CalciumPool("Ca", ("CaL",), tau=5.0, depth=0.1, Ca_inf=2.4e-4)
    >>> pool.param_names()
    ('tau_Ca', 'depth_Ca', 'Ca_inf')
    """

    name: str = "Ca"
    channels: tuple = ("CaL",)
    tau: float = 5.0
    depth: float = 0.1
    Ca_inf: float = 2.4e-4

    def __post_init__(self):
        from hhsym.model.parts import _RESERVED, _check_number

        check_identifier(self.name, "calcium pool")
        if self.name in _RESERVED:
            raise ModelError(f"invalid calcium pool name {self.name!r}: {sorted(_RESERVED)} are reserved")
        channels = (self.channels,) if isinstance(self.channels, str) else self.channels
        try:
            channels = tuple(channels)
        except TypeError:
            raise invalid(f"channels of calcium pool {self.name!r}", self.channels,
                          "a sequence of channel names, e.g. ('CaL',)", cls=ModelError) from None
        if not channels or not all(isinstance(c, str) for c in channels) or len(set(channels)) != len(channels):
            raise invalid(f"channels of calcium pool {self.name!r}", self.channels,
                          "a non-empty sequence of distinct channel names, e.g. ('CaL',)", cls=ModelError)
        object.__setattr__(self, "channels", channels)
        names = self.param_names()
        _check_number(names[0], self.tau, minimum=0.0, strict=True)
        _check_number(names[1], self.depth, minimum=0.0, strict=True)
        _check_number(names[2], self.Ca_inf, minimum=0.0)
        for field in ("tau", "depth", "Ca_inf"):
            object.__setattr__(self, field, float(getattr(self, field)))

    def param_names(self):
        """tuple of str: ``(tau_<name>, depth_<name>, <name>_inf)`` (ms, µm, mM)."""
        return (f"tau_{self.name}", f"depth_{self.name}", f"{self.name}_inf")

    def param_values(self):
        """dict: parameter name -> value (ms, µm, mM)."""
        return dict(zip(self.param_names(), (self.tau, self.depth, self.Ca_inf)))

    def with_values(self, values):
        """A copy with parameter values taken from ``values`` (a dict by parameter name)."""
        tau, depth, inf = (values[k] for k in self.param_names())
        return CalciumPool(self.name, self.channels, tau, depth, inf)

    def rhs(self, current, p):
        """Right-hand side d[Ca]/dt (mM/ms) as sympy.

        Parameters
        ----------
        current : sympy.Expr
            The summed current of the driving channels (µA/cm²).
        p : dict
            Parameter name -> sympy symbol.

        Returns
        -------
        sympy.Expr
        """
        tau, depth, inf = (p[k] for k in self.param_names())
        x = sympy.Symbol(self.name, real=True)
        return -sympy.Float(5.0 / FARADAY) * current / depth + (inf - x) / tau

    def relaxation(self, current, p):
        """Exact relaxation form ``(K, T)`` of :meth:`rhs`: ``d[Ca]/dt = K (T - [Ca])`` (1/ms, mM)."""
        tau, depth, inf = (p[k] for k in self.param_names())
        return 1 / tau, inf - sympy.Float(5.0 / FARADAY) * tau * current / depth


def check_pools(pools, channel_names):
    """Validate ``pools`` (a sequence of :class:`CalciumPool`) against the model's channel names.

    Returns
    -------
    tuple of CalciumPool
    """
    if isinstance(pools, CalciumPool):
        pools = (pools,)
    try:
        pools = tuple(pools or ())
    except TypeError:
        raise invalid("pools", pools, "a sequence of hhsym.CalciumPool", cls=ModelError) from None
    for pool in pools:
        if not isinstance(pool, CalciumPool):
            raise invalid("pools", pool, "CalciumPool objects, e.g. CalciumPool('Ca', ('CaL',))", cls=ModelError)
        missing = [c for c in pool.channels if c not in channel_names]
        if missing:
            raise invalid(f"channels of calcium pool {pool.name!r}", pool.channels,
                          f"names of the model's channels ({', '.join(channel_names)})", cls=ModelError)
    names = [pool.name for pool in pools]
    if len(set(names)) != len(names):
        raise ModelError(f"calcium pool names must be unique, got {names}")
    return pools


def check_pool_drivers(model):
    """Raise unless the gates of every pool-driving channel have rates in V alone."""
    pool_names = {pool.name for pool in model.pools}
    for pool in model.pools:
        for ch in model.channels:
            if ch.name not in pool.channels:
                continue
            for gate in ch.gates:
                for kind in ("alpha", "beta"):
                    used = {s.name for s in model.rates[f"{kind}_{gate.name}"].free_symbols} & pool_names
                    if used:
                        raise ModelError(
                            f"{kind}_{gate.name} of channel {ch.name!r}, which drives calcium pool "
                            f"{pool.name!r}, uses the concentration(s) {sorted(used)}: the gates of a "
                            "pool's driving channels must depend on V only (calcium-dependent "
                            "inactivation is not supported yet)"
                        )


def channel_current(channel, p, x):
    """Current of ``channel`` (µA/cm²) as sympy: ``g prod(x^power) (V - E)``.

    Parameters
    ----------
    channel : Channel
    p : dict
        Parameter name -> sympy symbol (or value).
    x : dict
        Gate name -> sympy symbol (or expression).
    """
    from hhsym.symbolic import V

    conductance = p[f"g_{channel.name}"]
    for gate in channel.gates:
        conductance = conductance * x[gate.name] ** gate.power
    return conductance * (V - p[f"E_{channel.name}"])


def pool_current(model, pool, p, x):
    """The summed current (µA/cm²) of the channels driving ``pool``, as sympy."""
    return sympy.Add(*[channel_current(ch, p, x) for ch in model.channels if ch.name in pool.channels])


def pool_symbols(model):
    """dict: pool name -> real sympy symbol (the concentration, mM)."""
    return {pool.name: sympy.Symbol(pool.name, real=True) for pool in model.pools}
