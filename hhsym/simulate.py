"""Simulate conductance-based models: input checks, compiled kernels, traces out."""

from __future__ import annotations

import math
import numbers
import warnings

import numba
import numpy as np

from hhsym.codegen import METHODS, compile_model
from hhsym.errors import ArgumentTypeError, SimulationError, UndersampledStimulusWarning, UnknownNameError, invalid
from hhsym.model import check_model
from hhsym.stimuli import Stimulus, encode_stimuli
from hhsym.io import Trace, TraceSet
from hhsym.resting import initial_states, param_matrix, resting_state

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


def _warn_undersampled(stimuli, dt_out):
    """:class:`UndersampledStimulusWarning` when a stimulus changes between the output samples (see simulate)."""
    for i, s in enumerate(stimuli):
        step = s.sample_step
        if step < dt_out * (1.0 - 1e-9):
            which = "the stimulus" if len(stimuli) == 1 else f"stimulus {i}"
            warnings.warn(
                f"{which} interpolates samples every {step:g} ms but the traces record I every "
                f"dt_out={dt_out:g} ms: their I misses the current between samples that the cell got, and a "
                f"fit of them sees only the samples; give the stimulus the output step (e.g. "
                f"OUNoise(..., dt={dt_out:g})) or sample more often", UndersampledStimulusWarning, stacklevel=3)
            return


def simulate(model, stimulus, t_stop, dt=0.01, method="rk4", y0=None, rtol=1e-6, atol=1e-8,
             params=None, dt_out=None, max_steps=10_000_000, record=None, on_failure="raise"):
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
        or one per trace (calcium pools in mM).  Missing gates and pools
        start at their steady state at the given V (gates at the given pool
        concentrations); default: the resting steady state under ``I(0)``.
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
    on_failure : {"raise", "nan"}
        What a diverging trace does: ``"raise"`` (default) a SimulationError;
        ``"nan"`` fills every recorded state of that trace with NaN from the
        first failing sample on and returns the batch (e.g. a search over
        parameter sets in which some candidates blow up).

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
        When the integration diverges (non-finite V or calcium pool, gates outside [0, 1]);
        the message gives the trace, the time, the method and the step size.

    Warns
    -----
    UndersampledStimulusWarning
        When a stimulus interpolates samples finer than ``dt_out`` (an
        :class:`~hhsym.stimuli.OUNoise` on its default 0.025 ms grid recorded
        every 0.05 ms): the traces' ``I`` holds the current at the output
        samples only, and a fit of them misses what the cell got in between
        (measured: rates distilled from such recordings ~5 % off where a fit of
        correctly sampled ones reached the noise level; ``notes/issue16.md``,
        session 15).  Give the stimulus the output step
        (``OUNoise(..., dt=dt_out)``) or sample more often.

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
    if on_failure not in ("raise", "nan"):
        raise invalid("on_failure", on_failure, "'raise' or 'nan'")
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
    _warn_undersampled(stimuli, dt_out)
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
    P = param_matrix(model, params, n)
    # the injected current at the samples: returned in the traces, and I(0) sets the resting state
    t = np.arange(n_samples) * dt_out
    I, I_finite = _sample_stimuli(stimuli, t)
    Y0 = np.ascontiguousarray(initial_states(model, y0, I[:, 0], params, n))
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
                   0.0, dt, n_steps, rec_every, BLOCK, numba.get_num_threads(), OUT, FAIL)
        where = f"{method} (dt={dt:g} ms)"
        STATS = None
    if on_failure == "nan" and np.any(FAIL >= 0):
        for i in np.flatnonzero(FAIL >= 0):
            k = int(FAIL[i]) // rec_every if method != "dopri5" else int(FAIL[i])
            OUT[:, i, max(0, min(k, n_samples - 1)):] = np.nan
        FAIL[:] = -1  # the traces below are built without a second scan, so the NaN rows stand
    if np.any(FAIL >= 0):
        i = int(np.flatnonzero(FAIL >= 0)[0])
        k = int(FAIL[i]) if method == "dopri5" else int(FAIL[i]) // rec_every
        t_bad = (FAIL[i] * dt) if method != "dopri5" else k * dt_out
        hint = ("reduce dt or use method='exp_euler' or 'dopri5'" if method != "dopri5"
                else "tighten rtol/atol or raise max_steps; check the model for stiffness")
        raise SimulationError(
            f"simulation of trace {i} diverged at t = {t_bad:g} ms with {where}: V or a calcium pool not "
            f"finite, or a gate left [0, 1] ({int((FAIL >= 0).sum())} of {n} traces failed); {hint}"
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
