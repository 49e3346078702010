"""The conductance-based model (see :mod:`hhsym.model`)."""

from __future__ import annotations


import numpy as np
import sympy

from hhsym.errors import InvalidArgumentError, ModelError, UnknownNameError, invalid
from hhsym.model.gating import gating_from_rates, rate_functions
from hhsym.model.parts import Channel, Gate, check_parts
from hhsym.model.pools import check_pool_drivers, check_pools
from hhsym.symbolic import parse_expression, safe_expression

__all__ = ["ConductanceModel", "check_model"]


class ConductanceModel:
    """A single-compartment conductance-based model.

    Parameters
    ----------
    channels : sequence of Channel
        Ohmic channels, leak included (a channel without gates).
    C_m : float
        Membrane capacitance (µF/cm², > 0).
    params : dict, optional
        Extra named constants used by rate expressions (e.g. ``{"V_half": -40.0}``).
    name : str
        Display name.
    citation : str, optional
        Where the model comes from.
    pools : sequence of CalciumPool, optional
        Non-gate states: calcium concentrations (mM) with their own ODE
        (:mod:`hhsym.model.pools`); gate rates may use their names.

    Attributes
    ----------
    states : tuple of str
        ``("V", gate names..., pool names...)`` in integration order.
    params : dict
        ``C_m``, then ``g_<channel>``, ``E_<channel>`` for each channel, then
        each pool's ``tau_<pool>``, ``depth_<pool>``, ``<pool>_inf``, then
        the extra rate parameters.
    rates : dict
        ``alpha_<gate>``/``beta_<gate>`` -> sympy expression in ``V`` (and
        the pools' concentrations).

    Examples
    --------
    >>> from hhsym import Gate, Channel, ConductanceModel
    >>> leak = Channel("L", g=0.1, E=-65.0)
    >>> k = Channel("K", g=5.0, E=-80.0, gates=[Gate("n", "0.02*exp(V/20)", "0.02*exp(-V/20)", 4)])
    >>> model = ConductanceModel([k, leak], C_m=1.0)
    >>> model.states
    ('V', 'n')
    """

    def __init__(self, channels, C_m=1.0, params=None, name="model", citation=None, pools=()):
        channels, extra, names, gate_names = check_parts(channels, C_m, params)
        self._channels = channels
        self._C_m = float(C_m)
        self._extra = {k: float(v) for k, v in extra.items()}
        self._pools = check_pools(pools, names)
        self.name = str(name)
        self.citation = citation
        pool_names = [pool.name for pool in self._pools]
        base = self._base_param_names()
        if len(set(base) | set(self._extra)) != len(base) + len(self._extra):
            raise ModelError(f"parameter names must be unique, got {base + list(self._extra)}")
        for kind, clash in (("gate and parameter", set(gate_names) & (set(base) | set(self._extra))),
                            ("calcium pool and gate or parameter",
                             set(pool_names) & (set(gate_names) | set(base) | set(self._extra)))):
            if clash:
                raise ModelError(f"names used both as {kind}: {sorted(clash)}")
        allowed = tuple(self._extra) + tuple(pool_names)
        self._rates = {}
        for ch in channels:
            for gate in ch.gates:
                for kind in ("alpha", "beta"):
                    key = f"{kind}_{gate.name}"
                    self._rates[key] = parse_expression(getattr(gate, kind), allowed, where=key)
        check_pool_drivers(self)

    # ------------------------------------------------------------------ structure
    @property
    def channels(self):
        """tuple of Channel: the channels, in order."""
        return self._channels

    @property
    def gates(self):
        """tuple of Gate: all gates, in state order (rates as given by the user)."""
        return tuple(g for ch in self._channels for g in ch.gates)

    @property
    def states(self):
        """tuple of str: ``("V", gate names..., pool names...)``."""
        return ("V",) + tuple(g.name for g in self.gates) + tuple(p.name for p in self._pools)

    @property
    def pools(self):
        """tuple of CalciumPool: the non-gate states (concentrations, mM), in state order."""
        return self._pools

    @property
    def rates(self):
        """dict: ``alpha_x``/``beta_x`` -> sympy expression in ``V`` (1/ms)."""
        return dict(self._rates)

    def _base_param_names(self):
        names = ["C_m"]
        for ch in self._channels:
            names += [f"g_{ch.name}", f"E_{ch.name}"]
        for pool in self._pools:
            names += list(pool.param_names())
        return names

    @property
    def params(self):
        """dict: parameter name -> value (units: µF/cm², mS/cm², mV, rate constants)."""
        out = {"C_m": self._C_m}
        for ch in self._channels:
            out[f"g_{ch.name}"] = ch.g
            out[f"E_{ch.name}"] = ch.E
        for pool in self._pools:
            out.update(pool.param_values())
        out.update(self._extra)
        return out

    @property
    def rate_params(self):
        """dict: the extra parameters used by rate expressions."""
        return dict(self._extra)

    # ------------------------------------------------------------------ variants
    def with_params(self, **values):
        """Return a copy with some parameters changed.

        Parameters
        ----------
        **values : float
            New values by name (see :attr:`params`), e.g. ``g_Na=100.0``.

        Returns
        -------
        ConductanceModel
        """
        known = self.params
        for key, value in values.items():
            if key not in known:
                raise UnknownNameError(
                    f"unknown parameter {key!r} (value {value!r}): accepted names are "
                    f"{', '.join(known)}"
                )
        new = {**known, **values}
        channels = tuple(
            Channel(ch.name, new[f"g_{ch.name}"], new[f"E_{ch.name}"], self._gates_with_rates(ch))
            for ch in self._channels
        )
        extra = {k: new[k] for k in self._extra}
        pools = [pool.with_values(new) for pool in self._pools]
        return ConductanceModel(channels, new["C_m"], extra, self.name, self.citation, pools)

    def with_rates(self, rates, params=None, name=None):
        """Return a copy with some rate expressions replaced.

        Parameters
        ----------
        rates : dict
            ``{"alpha_m": expr, ...}``; each expression a string, number or
            sympy expression in ``V`` (1/ms).
        params : dict, optional
            New constants the expressions use (added to the rate parameters).
        name : str, optional
            Name of the new model (default: unchanged).

        Returns
        -------
        ConductanceModel
        """
        if not isinstance(rates, dict):
            raise invalid("rates", rates, "a dict {'alpha_m': expression, ...}")
        for key in rates:
            if key not in self._rates:
                raise UnknownNameError(
                    f"unknown rate {key!r}: accepted names are {', '.join(self._rates)}"
                )
        extra = {**self._extra, **dict(params or {})}
        current = {**self._rates, **rates}
        channels = tuple(
            Channel(
                ch.name,
                ch.g,
                ch.E,
                tuple(
                    Gate(g.name, current[f"alpha_{g.name}"], current[f"beta_{g.name}"], g.power)
                    for g in ch.gates
                ),
            )
            for ch in self._channels
        )
        return ConductanceModel(channels, self._C_m, extra, name or self.name, self.citation, self._pools)

    def _gates_with_rates(self, ch):
        return tuple(
            Gate(g.name, self._rates[f"alpha_{g.name}"], self._rates[f"beta_{g.name}"], g.power)
            for g in ch.gates
        )

    # ------------------------------------------------------------------ numerics
    def safe_rates(self):
        """dict: rates guarded so removable singularities give their exact limits.

        Returns
        -------
        dict
            ``alpha_x``/``beta_x`` -> sympy expression (``Piecewise`` near 0/0 points).
        """
        return {key: safe_expression(expr) for key, expr in self._rates.items()}

    def rate_functions(self):
        """Numpy evaluators of the rates at the current parameter values.

        Returns
        -------
        dict
            ``alpha_x``/``beta_x`` -> callable ``f(V, **concentrations) -> ndarray``
            (V in mV, calcium pools in mM, default their resting levels;
            result in 1/ms), exact at removable singularities.
        """
        return rate_functions(self)

    def evaluate_rates(self, V_values, **concentrations):
        """Evaluate every rate on voltages ``V_values`` (mV).

        Parameters
        ----------
        V_values : array_like
            Membrane potentials (mV).
        **concentrations : array_like
            Values (mM) of calcium pools the rates use, broadcast against
            ``V_values``; a pool not given is at its resting level ``<pool>_inf``.

        Returns
        -------
        dict
            Rate name -> ndarray (1/ms), same shape as ``V_values``.
        """
        values = np.asarray(V_values, dtype=float)
        return {key: f(values, **concentrations) for key, f in self.rate_functions().items()}

    def check_rates(self, v_range=None):
        """Raise unless every rate is finite and non-negative over ``v_range`` (mV).

        A rate is a transition frequency: a negative value (or NaN) makes the
        gate equations meaningless, and a simulation would leave [0, 1] or run
        silently wrong.  Checked on a 0.25 mV grid; the result is cached.

        Parameters
        ----------
        v_range : (float, float), optional
            Voltage range (mV); default :data:`RATE_CHECK_RANGE`.

        Returns
        -------
        ConductanceModel
            ``self``.

        Raises
        ------
        ModelError
            Naming the first offending rate, the voltage and the value.
        """
        from hhsym.model.gating import check_rates

        return check_rates(self, v_range)

    def steady_state(self, V_values, **concentrations):
        """Gate steady states :math:`x_\\infty = \\alpha/(\\alpha+\\beta)` at ``V_values`` (mV).

        Calcium pools the rates use are at ``**concentrations`` (mM), default their resting levels.

        Returns
        -------
        dict
            Gate name -> ndarray (dimensionless).
        """
        return {g: xinf for g, (xinf, _) in gating_from_rates(self.evaluate_rates(V_values, **concentrations)).items()}

    def time_constants(self, V_values, **concentrations):
        """Gate time constants :math:`\\tau_x = 1/(\\alpha+\\beta)` (ms) at ``V_values`` (mV).

        Calcium pools the rates use are at ``**concentrations`` (mM), default their resting levels.

        Returns
        -------
        dict
            Gate name -> ndarray (ms).
        """
        return {g: tau for g, (_, tau) in gating_from_rates(self.evaluate_rates(V_values, **concentrations)).items()}

    # ------------------------------------------------------------------ symbolic system
    def param_symbols(self):
        """dict: parameter name -> real sympy symbol of that name."""
        return {k: sympy.Symbol(k, real=True) for k in self.params}

    def equations(self, numeric=False):
        """The ODE system as sympy equations.

        Parameters
        ----------
        numeric : bool
            Substitute parameter values (True) or keep ``C_m, g_x, E_x`` as symbols.

        Returns
        -------
        list of sympy.Eq
            ``C_m dV/dt = I - sum(...)`` first, then one ``dx/dt = ...`` per gate,
            with the rate expressions inlined, then one per calcium pool
            (mM/ms).  Time derivatives are the symbols ``dV/dt``, ``dm/dt``, ...
        """
        from hhsym.model.equations import model_equations

        return model_equations(self, numeric)

    def latex(self, environment="align"):
        r"""Typeset the full ODE system with sympy.

        The membrane equation uses the parameter symbols; each gate equation
        uses :math:`\alpha_x(V), \beta_x(V)`, which follow as their own lines;
        parameter values close the block.

        Parameters
        ----------
        environment : {"align", "lines"}
            ``"align"``: one LaTeX ``align*`` block; ``"lines"``: a list of
            ``(lhs, rhs)`` LaTeX string pairs, convenient for parsing back.

        Returns
        -------
        str or list of (str, str)
        """
        from hhsym.export.latex import model_latex

        return model_latex(self, environment)

    # ------------------------------------------------------------------ identity / io
    def structure_key(self):
        """str: hash of everything code generation depends on (not parameter values).

        Computed once per model (models are immutable): simulate() looks its
        compiled kernel up by this key on every call, and printing the rates
        with sympy takes ~2 ms.
        """
        key = self.__dict__.get("_structure_key")
        if key is None:
            key = self._structure_key = self._compute_structure_key()
        return key

    def _compute_structure_key(self):
        from hhsym.model.equations import structure_key

        return structure_key(self)

    def to_dict(self):
        """JSON-safe description (structure, parameter values, rates as exact srepr strings).

        Returns
        -------
        dict
            Format ``hhsym.model/1`` (:mod:`hhsym.export.model_json`).
        """
        from hhsym.export.model_json import model_to_dict

        return model_to_dict(self)

    @classmethod
    def from_dict(cls, data):
        """Rebuild a model from :meth:`to_dict` output (exact round trip; nothing is evaluated).

        Parameters
        ----------
        data : dict

        Returns
        -------
        ConductanceModel
        """
        from hhsym.export.model_json import model_from_dict

        return model_from_dict(data)

    def __eq__(self, other):
        return (
            isinstance(other, ConductanceModel)
            and self.structure_key() == other.structure_key()
            and self.params == other.params
            and self._pools == other._pools
        )

    def __hash__(self):
        return hash((self.structure_key(), tuple(self.params.items())))

    def __repr__(self):
        chans = ", ".join(
            ch.name + ("[" + " ".join(f"{g.name}^{g.power}" for g in ch.gates) + "]" if ch.gates else "")
            for ch in self._channels
        )
        pools = "".join(f"; pool {p.name} <- {'+'.join(p.channels)}" for p in self._pools)
        return f"ConductanceModel({self.name!r}: {chans}{pools}; C_m={self._C_m:g})"


def check_model(model, argument="model"):
    """Raise unless ``model`` is a :class:`ConductanceModel`; return it."""
    if not isinstance(model, ConductanceModel):
        raise invalid(argument, model, "a hhsym.ConductanceModel (e.g. hhsym.library.hodgkin_huxley())",
                      cls=InvalidArgumentError)
    return model
