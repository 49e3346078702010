"""Simulate conductance-based models: input checks, compiled kernels, traces out."""

from __future__ import annotations

import math
import numbers

import numpy as np
import sympy

from hhsym.codegen import METHODS, compile_model
from hhsym.errors import ArgumentTypeError, SimulationError, UnknownNameError, invalid
from hhsym.model import check_model
from hhsym.stimuli import Stimulus, encode_stimuli
from hhsym.symbolic import V
from hhsym.io import Trace, TraceSet

__all__ = ["simulate", "resting_state"]

#: Neurons per structure-of-arrays block in the fixed-step kernels.
BLOCK = 32


def _positive_float(name, value, unit):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise invalid(name, value, f"a positive finite number ({unit})")
    return float(value)


#: Share of the machine's available memory one simulation's output may take.
MEMORY_SHARE = 0.5


def _available_memory():
    """Bytes of memory available now (physical), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(t_stop, n_rows, n_traces, n_samples, dt_out):
    """Raise before allocating when the output arrays would not fit in memory."""
    need = 8.0 * n_rows * n_traces * n_samples
    free = _available_memory()
    if free is not None and need > MEMORY_SHARE * free:
        raise invalid(
            "t_stop", t_stop,
            f"a simulation whose output fits in memory: {n_samples} samples x {n_traces} trace(s) x "
            f"{n_rows} arrays need {need / 1e9:.3g} GB, and "
            f"{free / 1e9:.3g} GB are available",
            hint=f"shorten t_stop, sample less often (dt_out larger than {dt_out:g} ms), record fewer states "
                 "(record=()) or split the batch",
        )


def _stimuli(stimulus):
    if isinstance(stimulus, Stimulus):
        return [stimulus], True
    if isinstance(stimulus, (list, tuple)) and stimulus and all(isinstance(s, Stimulus) for s in stimulus):
        return list(stimulus), False
    raise invalid(
        "stimulus", stimulus,
        "a hhsym.stimuli.Stimulus (Step, Ramp, PulseTrain, Sine, OUNoise, FromArray, or a sum) "
        "or a non-empty list of them",
        cls=ArgumentTypeError,
    )


def _param_matrix(model, params, n):
    """(n_params, n) array of parameter values, with per-neuron overrides."""
    names = list(model.params)
    P = np.empty((len(names), n))
    for k, name in enumerate(names):
        P[k] = model.params[name]
    for name, values in (params or {}).items():
        if name not in model.params:
            raise UnknownNameError(
                f"unknown parameter {name!r} in params: accepted names are {', '.join(names)}"
            )
        arr = np.asarray(values, dtype=float).reshape(-1)
        if arr.size not in (1, n) or not np.all(np.isfinite(arr)):
            raise invalid(f"params[{name!r}]", values, f"a finite number or {n} finite numbers (one per trace)")
        P[names.index(name)] = arr
    check_c = P[names.index("C_m")]
    if np.any(check_c <= 0):
        raise invalid("params['C_m']", check_c[check_c <= 0][0], "C_m > 0 (µF/cm²)")
    for k, name in enumerate(names):
        if name.startswith("g_") and np.any(P[k] < 0):
            raise invalid(f"params[{name!r}]", P[k][P[k] < 0][0], "a conductance >= 0 (mS/cm²)")
    return P


def _batch_size(stimuli, params):
    sizes = {len(stimuli)}
    for values in (params or {}).values():
        size = np.asarray(values, dtype=float).size
        if size != 1:
            sizes.add(size)
    sizes.discard(1)
    if len(sizes) > 1:
        raise invalid("params", {k: np.shape(v) for k, v in (params or {}).items()},
                      f"arrays of one common length matching the {len(stimuli)} stimuli (or length 1)")
    return sizes.pop() if sizes else 1


def _steady_functions(model):
    """Vectorised x_inf(V, *rate_params) and ionic-current pieces for a model (cached on it)."""
    cached = getattr(model, "_hhsym_steady", None)
    if cached is not None:
        return cached
    extra = [sympy.Symbol(k, real=True) for k in model.rate_params]
    rates = model.safe_rates()
    xinf = {}
    for g in model.gates:
        a, b = rates[f"alpha_{g.name}"], rates[f"beta_{g.name}"]
        xinf[g.name] = sympy.lambdify([V, *extra], a / (a + b), modules="numpy")
    model._hhsym_steady = xinf
    return xinf


#: Resting states kept per model (entries of ``model._hhsym_rest``); the dict is
#: emptied when it would grow beyond this.
REST_CACHE_SIZE = 4096


def resting_state(model, I0=0.0, params=None, n=1):
    """Steady state(s) of ``model`` under a constant current.

    The membrane potential solves ``I0 = sum_k g_k prod_j x_inf,j(V)^p_j (V - E_k)``;
    of several solutions the most hyperpolarised one with a stable slope is
    taken; gates are at their steady states.  Each distinct (I0, parameters)
    pair is solved once, and its solution is kept on the model for later calls
    (up to ``REST_CACHE_SIZE`` pairs).

    Parameters
    ----------
    model : ConductanceModel
    I0 : float or array_like
        Constant injected current (µA/cm²), scalar or one per neuron.
    params : dict, optional
        Per-neuron parameter overrides, as in :func:`simulate`.
    n : int
        Number of neurons.

    Returns
    -------
    dict
        State name -> array of shape ``(n,)`` (V in mV, gates dimensionless).
    """
    P = _param_matrix(model, params, n)
    I0 = np.broadcast_to(np.asarray(I0, dtype=float), (n,))
    # solve once per distinct (I0, parameters) pair: large batches usually share a few
    rows = np.column_stack([I0, P.T])
    first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)[1:]
    inverse = inverse.reshape(-1)
    keys = [rows[i].tobytes() for i in first]
    cache = getattr(model, "_hhsym_rest", None)
    if cache is None:
        cache = model._hhsym_rest = {}
    found = {key: cache[key] for key in keys if key in cache}
    todo = [u for u, key in enumerate(keys) if key not in found]
    if todo:
        solved = _solve_rest(model, I0[first[todo]], P[:, first[todo]], first[todo])
        new = {keys[u]: tuple(float(v[m]) for v in solved.values()) for m, u in enumerate(todo)}
        if len(cache) + len(new) > REST_CACHE_SIZE:
            cache.clear()
        cache.update(new)
        found.update(new)
    names = ["V", *_steady_functions(model)]
    values = np.array([found[key] for key in keys]).reshape(len(keys), len(names))[inverse]
    return {name: values[:, k].copy() for k, name in enumerate(names)}


def _solve_rest(model, I0, P, traces):
    """Resting states for ``I0`` (µA/cm², shape (m,)) and parameters ``P`` (n_params, m).

    ``traces`` (m,) are the trace indices named in the error when a column
    has no resting potential.  Returns state name -> array (m,), V first.
    """
    n = I0.size
    I0 = I0[:, None]
    names = list(model.params)
    extra = [P[names.index(k)][:, None] for k in model.rate_params]
    xinf = _steady_functions(model)
    grid = np.arange(-150.0, 100.0 + 1e-9, 0.25)[None, :]

    def net_current(Vg, rows):
        total = np.zeros(np.broadcast_shapes(Vg.shape, (rows.size, 1)))
        with np.errstate(all="ignore"):
            gates = {g: np.asarray(f(Vg, *[e[rows] for e in extra]), dtype=float) for g, f in xinf.items()}
            for ch in model.channels:
                cond = P[names.index(f"g_{ch.name}")][rows][:, None]
                for gate in ch.gates:
                    cond = cond * gates[gate.name] ** gate.power
                total = total + cond * (Vg - P[names.index(f"E_{ch.name}")][rows][:, None])
        return I0[rows] - total

    rows = np.arange(n)
    f = net_current(grid, rows)
    # first + to - crossing (dV/dt decreasing through zero: stable for V alone)
    cross = (f[:, :-1] > 0) & (f[:, 1:] <= 0)
    if not np.all(cross.any(axis=1)):
        bad = int(np.flatnonzero(~cross.any(axis=1))[0])
        raise SimulationError(
            f"no resting potential in [-150, 100] mV for trace {int(traces[bad])} "
            f"(I0={float(I0[bad, 0]):g} µA/cm²): pass y0 explicitly"
        )
    k = cross.argmax(axis=1)
    lo = grid[0, k].copy()
    hi = grid[0, k + 1].copy()
    for _ in range(60):  # bisection to ~1e-14 mV
        mid = 0.5 * (lo + hi)
        fm = net_current(mid[:, None], rows)[:, 0] if n else mid
        pos = fm > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
    Vrest = 0.5 * (lo + hi)
    out = {"V": Vrest}
    for g, fn in xinf.items():
        out[g] = np.asarray(fn(Vrest, *[e[:, 0] for e in extra]), dtype=float) * np.ones(n)
    return out


def _initial_states(model, y0, I0, params, n):
    """(n_states, n) initial states; I0 (n,) is the current at t = 0 (µA/cm²)."""
    states = model.states
    if y0 is None:
        rest = resting_state(model, I0, params, n)
        return np.array([rest[s] for s in states])
    if not isinstance(y0, dict):
        raise invalid("y0", y0, f"a dict by state name ({', '.join(states)}) or None", cls=ArgumentTypeError)
    unknown = [k for k in y0 if k not in states]
    if unknown:
        raise UnknownNameError(f"unknown state(s) {unknown} in y0: accepted names are {', '.join(states)}")
    Y0 = np.empty((len(states), n))
    values = {}
    for name, value in y0.items():
        arr = np.asarray(value, dtype=float).reshape(-1)
        if arr.size not in (1, n) or not np.all(np.isfinite(arr)):
            raise invalid(f"y0[{name!r}]", value, f"a finite number or {n} finite numbers")
        if name != "V" and np.any((arr < 0) | (arr > 1)):
            raise invalid(f"y0[{name!r}]", value, "gate values in [0, 1]")
        values[name] = np.broadcast_to(arr, (n,))
    # states not given: steady state at the given V (or at rest)
    if len(values) < len(states):
        if "V" in values:
            xinf = _steady_functions(model)
            P = _param_matrix(model, params, n)
            names = list(model.params)
            extra = [P[names.index(k)] for k in model.rate_params]
            rest = {"V": values["V"]}
            for g, fn in xinf.items():
                rest[g] = np.asarray(fn(values["V"], *extra), dtype=float) * np.ones(n)
        else:
            rest = resting_state(model, I0, params, n)
        for name in states:
            values.setdefault(name, rest[name])
    for k, name in enumerate(states):
        Y0[k] = values[name]
    return Y0


def _sample_stimuli(stimuli, t):
    """The injected currents (µA/cm²) of ``stimuli`` at the times ``t`` (ms).

    Each distinct stimulus object is evaluated once, straight into its row of
    the result (no list of rows stacked afterwards); repeats copy that row.

    Parameters
    ----------
    stimuli : list of Stimulus
        One per trace (the same object may appear several times).
    t : numpy.ndarray
        Sorted finite sample times (ms), shape ``(n_samples,)``.

    Returns
    -------
    I : numpy.ndarray
        Read-only float64 array of shape ``(len(stimuli), n_samples)``.
    finite : bool
        Whether every value of ``I`` is finite (as told by each stimulus'
        ``_sample_into``).
    """
    I = np.empty((len(stimuli), t.size))
    first = {}
    finite = True
    for i, s in enumerate(stimuli):
        j = first.setdefault(id(s), i)
        if j == i:
            finite = s._sample_into(t, I[i]) and finite
        else:
            I[i] = I[j]
    I.flags.writeable = False
    return I, finite


def _recorded_states(model, record):
    """Indices (int64 array, V first) of the states to keep, from ``record`` (names) or None (all)."""
    states = model.states
    if record is None:
        return np.arange(len(states), dtype=np.int64)
    if isinstance(record, str) or not isinstance(record, (list, tuple, set, frozenset)):
        raise invalid("record", record, f"a list or tuple of state names ({', '.join(states)})",
                      cls=ArgumentTypeError)
    unknown = [k for k in record if k not in states]
    if unknown:
        raise UnknownNameError(f"unknown state(s) {unknown} in record: accepted names are {', '.join(states)}")
    keep = {"V", *record}
    return np.array([k for k, name in enumerate(states) if name in keep], dtype=np.int64)


def simulate(model, stimulus, t_stop, dt=0.01, method="rk4", y0=None, rtol=1e-6, atol=1e-8,
             params=None, dt_out=None, max_steps=10_000_000, record=None):
    r"""Simulate ``model`` under one or many stimuli with a compiled integrator.

    Parameters
    ----------
    model : ConductanceModel
        Any conductance-based model (its rates are compiled from sympy).
    stimulus : Stimulus or list of Stimulus
        Injected current(s) in µA/cm².  A list runs a batch (in parallel).
    t_stop : float
        End time (ms, > 0).  Samples are at ``0, dt_out, 2 dt_out, ...`` up to
        the last one not after ``t_stop``.
    dt : float
        Step (ms) of the fixed-step methods; for ``"dopri5"`` the default
        sampling interval of the output (its step is adaptive).
    method : {"rk4", "exp_euler", "dopri5"}
        Fixed-step classical Runge–Kutta 4, exponential Euler (Rush–Larsen),
        or adaptive Dormand–Prince 5(4).
    y0 : dict, optional
        Initial state by name, e.g. ``{"V": -70.0, "n": 0.3}``; values scalar
        or one per trace.  Missing gates start at their steady state at the
        given V; default: the resting steady state under ``I(0)``.
    rtol, atol : float
        Relative and absolute tolerances of ``"dopri5"``.
    params : dict, optional
        Per-trace parameter values, ``{"g_Na": [100, 110, 120]}``; batches
        over parameter sets (combined with a single stimulus or one per set).
    dt_out : float, optional
        Output sampling interval (ms); a multiple of ``dt`` for the
        fixed-step methods.  Default ``dt``.
    max_steps : int
        Step budget per trace for ``"dopri5"``.
    record : sequence of str, optional
        States to keep in the result besides ``V`` (always kept), e.g. ``()``
        for V only or ``("m",)``; default every state.  Recording fewer states
        saves memory and time on large batches; blow-up detection still checks
        every state.

    Returns
    -------
    Trace or TraceSet
        A :class:`~hhsym.io.Trace` for a single stimulus without batched
        params, else a :class:`~hhsym.io.TraceSet` with arrays of shape
        ``(n_traces, n_samples)``.  ``states`` holds every state (or those
        named in ``record``).

    Raises
    ------
    InvalidArgumentError, UnknownNameError, ArgumentTypeError
        For bad arguments (the message names the argument and the accepted values).
    SimulationError
        When the integration diverges (non-finite V, gates outside [0, 1]);
        the message gives the trace, the time, the method and the step size.

    Examples
    --------
    >>> import hhsym
    >>> from hhsym.stimuli import Step
    >>> tr = hhsym.simulate(hhsym.library.hodgkin_huxley(), Step(10.0, 5.0, 45.0), t_stop=50.0)
    >>> tr.V.shape
    (5001,)
    """
    model = check_model(model).check_rates()
    stimuli, single = _stimuli(stimulus)
    t_stop = _positive_float("t_stop", t_stop, "ms")
    dt = _positive_float("dt", dt, "ms")
    if not isinstance(method, str) or method not in METHODS:
        raise UnknownNameError(f"unknown method {method!r}: accepted are {', '.join(METHODS)}")
    if dt > t_stop:
        raise invalid("dt", dt, f"a step no larger than t_stop={t_stop:g} ms")
    rtol = _positive_float("rtol", rtol, "relative tolerance")
    atol = _positive_float("atol", atol, "absolute tolerance")
    if params is not None and not isinstance(params, dict):
        raise invalid("params", params, "a dict {parameter name: value or values}", cls=ArgumentTypeError)
    dt_out = dt if dt_out is None else _positive_float("dt_out", dt_out, "ms")
    rec_every = 1
    if method != "dopri5":
        rec_every = int(round(dt_out / dt))
        if rec_every < 1 or abs(rec_every * dt - dt_out) > 1e-9 * dt_out:
            raise invalid("dt_out", dt_out, f"a whole multiple of dt={dt:g} ms")
    n_samples = int(math.floor(t_stop / dt_out + 1e-9)) + 1
    end = min(s.end_time for s in stimuli)
    t_last = (n_samples - 1) * dt_out
    if t_last > end + 1e-9:
        raise invalid("t_stop", t_stop, f"at most {end:g} ms, where the stimulus data ends")

    rec = _recorded_states(model, record)

    n = _batch_size(stimuli, params)
    if len(stimuli) == 1 and n > 1:
        stimuli = stimuli * n
    single = single and n == 1 and not any(np.asarray(v).size > 1 for v in (params or {}).values())
    _check_memory(t_stop, rec.size + 2, n, n_samples, dt_out)
    P = _param_matrix(model, params, n)
    # the injected current at the samples: returned in the traces, and I(0) sets the resting state
    t = np.arange(n_samples) * dt_out
    I, I_finite = _sample_stimuli(stimuli, t)
    Y0 = np.ascontiguousarray(_initial_states(model, y0, I[:, 0], params, n))
    table = encode_stimuli(stimuli, t_last)
    kernel = compile_model(model, method)
    FAIL = np.full(n, -1, dtype=np.int64)
    if method == "dopri5":
        OUT = np.empty((len(model.states), n, n_samples))  # (state, trace, sample)
        t_out = np.arange(n_samples) * dt_out
        STATS = np.zeros((2, n), dtype=np.int64)
        kernel.run(Y0, P, table.ptr, table.kind, table.par, table.data, table.bp_ptr, table.bp,
                   t_out, rtol, atol, np.inf, int(max_steps), OUT, FAIL, STATS)
        where = "dopri5 (rtol={:g}, atol={:g})".format(rtol, atol)
    else:
        n_steps = (n_samples - 1) * rec_every
        OUT = np.empty((rec.size, n, n_samples))
        kernel.run(Y0, P, table.ptr, table.kind, table.par, table.data, table.bp_ptr, table.bp, rec,
                   0.0, dt, n_steps, rec_every, BLOCK, OUT, FAIL)
        where = f"{method} (dt={dt:g} ms)"
        STATS = None
    if np.any(FAIL >= 0):
        i = int(np.flatnonzero(FAIL >= 0)[0])
        k = int(FAIL[i]) if method == "dopri5" else int(FAIL[i]) // rec_every
        t_bad = (FAIL[i] * dt) if method != "dopri5" else k * dt_out
        hint = ("reduce dt or use method='exp_euler' or 'dopri5'" if method != "dopri5"
                else "tighten rtol/atol or raise max_steps; check the model for stiffness")
        raise SimulationError(
            f"simulation of trace {i} diverged at t = {t_bad:g} ms with {where}: V not finite or a gate "
            f"left [0, 1] ({int((FAIL >= 0).sum())} of {n} traces failed); {hint}"
        )
    meta = {"model": model.name, "method": method, "dt": dt, "dt_out": dt_out}
    if method == "dopri5":
        meta.update(rtol=rtol, atol=atol, steps=STATS[0].tolist(), rejected=STATS[1].tolist())
    if rec.size < OUT.shape[0]:  # dopri5 always computes every state
        OUT = OUT[rec]
    OUT.flags.writeable = False  # traces keep read-only arrays without copying them again
    states = {model.states[k]: OUT[q] for q, k in enumerate(rec.tolist())}
    # The kernels checked every sample after the first (V finite, gates in [0, 1], else FAIL
    # above); the first is Y0.  So when Y0 and I are finite the traces need not scan them
    # again; otherwise the usual constructors report the bad value.
    kind = Trace if single else TraceSet
    build = kind._from_finite if I_finite and np.isfinite(Y0).all() else kind
    if single:
        return build(t, states["V"][0], I[0], {k: v[0] for k, v in states.items() if k != "V"},
                     {**meta, "stimulus": repr(stimuli[0])})
    return build(t, states["V"], I, {k: v for k, v in states.items() if k != "V"}, meta)
