r"""Whole-cell scalars fitted with the rates: maximal conductances, reversal potentials, capacitance.

A recording of a real cell fixes none of a template's scalars: the maximal
conductances :math:`g_c` (mS/cm²), the reversal potentials :math:`E_c` (mV)
and the specific capacitance :math:`C_m` (µF/cm²) are as unknown as the
rates.  :class:`ScalarParameters` names which of them an output-error fit
moves, maps them to internal coordinates and back, and writes their values
into the kernel's model arrays.

Internal coordinates (what an optimiser moves):

* :math:`\log g_c` for a conductance (it stays positive; a relative step);
* :math:`E_c` itself for a reversal potential (mV);
* :math:`\log C_m` for the capacitance.

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

__all__ = ["ScalarParameters", "KIND_G", "KIND_E", "KIND_C"]

#: Kinds of scalar, as the trajectory kernel reads them.
KIND_G, KIND_E, KIND_C = 0, 1, 2


class ScalarParameters:
    """The scalars of a template that a fit moves with the rates.

    Parameters
    ----------
    model : ConductanceModel
        The template; its values are the starting point.
    names : sequence of str
        Parameters to free, each ``g_<channel>``, ``E_<channel>`` or ``C_m`` of ``model``.

    Attributes
    ----------
    names : tuple of str
        The free scalars, in the given order.
    kind : ndarray of int
        :data:`KIND_G`, :data:`KIND_E` or :data:`KIND_C` per scalar.
    channel : ndarray of int
        Channel index (in ``model.channels`` order) per scalar (0 for ``C_m``).

    Raises
    ------
    InvalidArgumentError
        A name that is not a conductance, reversal potential or ``C_m`` of the model,
        a repeated name, or a free conductance whose template value is 0 (its log is the
        internal coordinate: start it from a positive value).
    """

    def __init__(self, model, names):
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        names = tuple(names)
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
            out[i] = v if k == KIND_E else np.log(v)
        return out

    def public(self, q):
        """dict: name -> public value (mS/cm², mV, µF/cm²) at internal coordinates ``q``."""
        q = np.asarray(q, dtype=float)
        return {name: float(v if k == KIND_E else np.exp(v)) for name, k, v in zip(self.names, self.kind, q)}

    def chain(self, q):
        """ndarray (n_params,): d(public value) / d(internal coordinate) at ``q``."""
        q = np.asarray(q, dtype=float)
        return np.where(self.kind == KIND_E, 1.0, np.exp(q))

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
