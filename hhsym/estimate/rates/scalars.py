r"""Whole-cell scalars fitted with the rates: maximal conductances, reversal potentials, capacitance.

A recording of a real cell fixes none of a template's scalars: the maximal
conductances :math:`g_c` (mS/cm²), the reversal potentials :math:`E_c` (mV)
and the specific capacitance :math:`C_m` (µF/cm²) are as unknown as the
rates.  :class:`ScalarParameters` names which of them an output-error fit
moves, maps them to internal coordinates and back, and writes their values
into the kernel's model arrays.

Internal coordinates (what an optimiser moves): first the natural coordinate

* :math:`z = \log g_c` for a conductance (it stays positive; a relative step);
* :math:`z = E_c` itself for a reversal potential (mV);
* :math:`z = \log C_m` for the capacitance;

then, for a scalar with bounds :math:`[l, u]` (:math:`[z_l, z_u]` in :math:`z`),
:math:`q = \operatorname{logit}((z - z_l) / (z_u - z_l))`, so that every value an
optimiser can reach lies inside them.  By default a conductance and the
capacitance only stay positive and a reversal potential stays within
:data:`E_SPAN` mV of the template's value (the ion concentrations fix it to
tens of mV; without a bound the fit of a real cell has been seen to take a
sodium reversal potential to −17 mV to flatten spikes it could not time).

The current of a lab recording reaches the model in µA/cm² through a
membrane area that is itself estimated.  A wrong area :math:`a' = a/s`
scales the current by :math:`s`; freeing :math:`C_m` and every conductance
absorbs it exactly (all of them scale by :math:`s`), so freeing
:math:`C_m` is the same as freeing the area.

The loss that consumes these columns is
:class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem` (``scalars=``):
its kernel adds the forcing terms

.. math::

    \frac{\partial \dot V}{\partial g_c} = -\frac{o_c (V - E_c)}{C_m}, \qquad
    \frac{\partial \dot V}{\partial E_c} = \frac{g_c o_c}{C_m}, \qquad
    \frac{\partial \dot V}{\partial C_m} = -\frac{\dot V}{C_m}

(:math:`o_c` the product of channel :math:`c`'s gates raised to their powers)
to the forward sensitivities, which this module's :meth:`ScalarParameters.chain`
turns into derivatives in internal coordinates.
"""

from __future__ import annotations

import numpy as np

from hhsym.errors import InvalidArgumentError, invalid

__all__ = ["ScalarParameters", "KIND_G", "KIND_E", "KIND_C", "E_SPAN", "parse_free"]

#: Kinds of scalar, as the trajectory kernel reads them.
KIND_G, KIND_E, KIND_C = 0, 1, 2

#: Default half-width (mV) of a free reversal potential's bounds around the template's value.
E_SPAN = 30.0


def parse_free(free):
    """Names and bounds of free scalars from a string, a sequence of names or a mapping.

    Parameters
    ----------
    free : str, sequence of str, or dict
        ``"g_Na,E_Na=30:70,C_m=0.5:3"`` (bounds in public units after ``=``, ``lo:hi``, either
        side may be empty for no bound), names, or name -> ``(lo, hi)`` or ``None``.

    Returns
    -------
    names : tuple of str
    bounds : dict
        Name -> ``(lo, hi)`` (floats, ``±inf`` for none) for the names given bounds.
    """
    if isinstance(free, str):
        free = [n.strip() for n in free.split(",") if n.strip()]
    if isinstance(free, dict):
        items = list(free.items())
    else:
        items = []
        for entry in free:
            if isinstance(entry, str) and "=" in entry:
                name, _, text = entry.partition("=")
                lo, sep, hi = text.partition(":")
                try:
                    if not sep:
                        raise ValueError(text)
                    pair = (float(lo) if lo.strip() else -np.inf, float(hi) if hi.strip() else np.inf)
                except ValueError:
                    raise invalid("free", entry, "NAME=LO:HI with numbers (either may be empty)") from None
                items.append((name.strip(), pair))
            else:
                items.append((entry, None))
    names, bounds = [], {}
    for name, pair in items:
        names.append(name)
        if pair is not None:
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise invalid(f"bounds of {name}", pair, "(lo, hi) numbers") from None
            if np.isnan(lo) or np.isnan(hi) or not lo < hi:
                raise invalid(f"bounds of {name}", pair, "lo < hi (±inf for no bound)")
            bounds[name] = (lo, hi)
    return tuple(names), bounds


class ScalarParameters:
    """The scalars of a template that a fit moves with the rates.

    Parameters
    ----------
    model : ConductanceModel
        The template; its values are the starting point.
    names : str, sequence of str, or dict
        Parameters to free, each ``g_<channel>``, ``E_<channel>`` or ``C_m`` of ``model``, with
        optional bounds (:func:`parse_free`: ``"g_Na,E_Na=30:70"`` or ``{"E_Na": (30, 70)}``).

    Attributes
    ----------
    names : tuple of str
        The free scalars, in the given order.
    kind : ndarray of int
        :data:`KIND_G`, :data:`KIND_E` or :data:`KIND_C` per scalar.
    channel : ndarray of int
        Channel index (in ``model.channels`` order) per scalar (0 for ``C_m``).
    bounds : dict
        Name -> ``(lo, hi)`` in public units for every free scalar (``±inf`` for none).

    Raises
    ------
    InvalidArgumentError
        A name that is not a conductance, reversal potential or ``C_m`` of the model,
        a repeated name, a free conductance whose template value is 0 (its log is the
        internal coordinate: start it from a positive value), bounds that exclude the
        template's value, or a negative lower bound of a conductance or ``C_m``.
    """

    def __init__(self, model, names):
        names, given = parse_free(names)
        channels = [ch.name for ch in model.channels]
        accepted = ["C_m"] + [f"{k}_{c}" for c in channels for k in ("g", "E")]
        kind, channel = [], []
        for name in names:
            if not isinstance(name, str) or name not in accepted:
                raise invalid("free", name, f"names among {', '.join(accepted)}")
            if name == "C_m":
                kind.append(KIND_C)
                channel.append(0)
            else:
                kind.append(KIND_G if name.startswith("g_") else KIND_E)
                channel.append(channels.index(name[2:]))
        if len(set(names)) != len(names):
            raise invalid("free", list(names), "distinct parameter names")
        for name in names:
            if name.startswith("g_") and not model.params[name] > 0:
                raise invalid(name, model.params[name], "a positive starting conductance (mS/cm²) to fit it "
                              "(it is fitted in log coordinates)")
        self.names = names
        self.kind = np.array(kind, dtype=np.int64)
        self.channel = np.array(channel, dtype=np.int64)
        self._start = {n: float(model.params[n]) for n in names}
        self.bounds = {}
        for name, k in zip(names, kind):
            start = self._start[name]
            lo, hi = given.get(name, (start - E_SPAN, start + E_SPAN) if k == KIND_E else (0.0, np.inf))
            if k != KIND_E and lo < 0:
                raise invalid(f"bounds of {name}", (lo, hi), "a lower bound >= 0 (it is positive)")
            if not lo < start < hi:
                raise invalid(f"bounds of {name}", (lo, hi), f"bounds around the template's value {start:g}")
            self.bounds[name] = (float(lo), float(hi))
        self._lo, self._hi = np.array(list(self.bounds.values()), dtype=float).reshape(-1, 2).T
        # bounds in the natural coordinate z (E, log g, log C); ±inf where a side is open
        z = [(lo, hi) if k == KIND_E else (np.log(lo) if lo > 0 else -np.inf, np.log(hi))
             for (lo, hi), k in zip(self.bounds.values(), kind)]
        self._zlo = np.array([a for a, _ in z], dtype=float)
        self._zhi = np.array([b for _, b in z], dtype=float)
        self._boxed = np.isfinite(self._zlo) & np.isfinite(self._zhi)
        one_sided = (np.isfinite(self._zlo) | np.isfinite(self._zhi)) & ~self._boxed
        if one_sided.any():
            name = names[int(np.flatnonzero(one_sided)[0])]
            raise invalid(f"bounds of {name}", self.bounds[name],
                          "both bounds or neither (a reversal potential), a conductance or C_m bounded "
                          "above with lo >= 0")

    @property
    def n_params(self):
        """int: number of free scalars."""
        return len(self.names)

    def pack(self, values=None):
        """Internal coordinates of public values.

        Parameters
        ----------
        values : dict, optional
            Name -> public value (mS/cm², mV, µF/cm²); default the template's.

        Returns
        -------
        ndarray (n_params,)
        """
        values = {**self._start, **(values or {})}
        out = np.empty(self.n_params)
        for i, (name, k) in enumerate(zip(self.names, self.kind)):
            v = float(values[name])
            if k != KIND_E and not v > 0:
                raise InvalidArgumentError(f"{name}={v!r}: expected a positive value")
            lo, hi = self.bounds[name]
            if not lo < v < hi:
                raise InvalidArgumentError(f"{name}={v!r}: expected a value inside its bounds ({lo:g}, {hi:g})")
            out[i] = v if k == KIND_E else np.log(v)
        b = self._boxed
        u = (out[b] - self._zlo[b]) / (self._zhi[b] - self._zlo[b])
        out[b] = np.log(u / (1.0 - u))
        return out

    def _natural(self, q):
        """The natural coordinates z (E, log g, log C) and dz/dq at internal coordinates ``q``."""
        q = np.asarray(q, dtype=float)
        z, dz = q.copy(), np.ones_like(q)
        b = self._boxed
        s = 0.5 * (1.0 + np.tanh(0.5 * q[b]))  # the logistic function, without overflow
        span = self._zhi[b] - self._zlo[b]
        z[b] = self._zlo[b] + span * s
        dz[b] = span * s * (1.0 - s)
        return z, dz

    def public(self, q):
        """dict: name -> public value (mS/cm², mV, µF/cm²) at internal coordinates ``q``."""
        z, _ = self._natural(q)
        v = np.where(self.kind == KIND_E, z, np.exp(np.minimum(z, 700.0)))
        v = np.clip(v, self._lo, self._hi)  # exp(log lo) may round below lo
        return {name: float(x) for name, x in zip(self.names, v)}

    def chain(self, q):
        """ndarray (n_params,): d(public value) / d(internal coordinate) at ``q``."""
        z, dz = self._natural(q)
        return np.where(self.kind == KIND_E, 1.0, np.exp(z)) * dz

    def arrays(self, q, arr):
        """The kernel's model arrays with the scalars at ``q`` written in.

        Parameters
        ----------
        q : ndarray (n_params,)
            Internal coordinates.
        arr : dict
            :func:`hhsym.estimate.losses.windows.model_arrays` of the template (not modified).

        Returns
        -------
        (float, ndarray, ndarray)
            ``C`` (µF/cm²), ``ch_g`` (mS/cm²), ``ch_E`` (mV).
        """
        C, g, E = float(arr["C"]), arr["ch_g"].copy(), arr["ch_E"].copy()
        for (name, value), k, c in zip(self.public(q).items(), self.kind, self.channel):
            if k == KIND_C:
                C = value
            elif k == KIND_G:
                g[c] = value
            else:
                E[c] = value
        return C, g, E

    def apply(self, model, q):
        """``model`` with the scalars at ``q`` (:meth:`ConductanceModel.with_params`)."""
        return model.with_params(**self.public(q))

    def __repr__(self):
        return f"ScalarParameters({list(self.names)})"
