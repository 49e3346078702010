"""Files of a held-out validation: the JSON result, one CSV per sweep, a text table.

Everything is written atomically: the JSON through :func:`hhsym.atomic.atomic_write`, the
traces folder through :func:`hhsym.atomic.atomic_folder` (built beside its target and swapped
in whole, so a previous folder is replaced as a whole, never mixed with a new run's files).
"""

from __future__ import annotations

import json
import os

import numpy as np

from hhsym.atomic import atomic_folder, atomic_write
from hhsym.errors import HHSymError

__all__ = ["write_json", "write_traces", "trace_file_name", "table_text", "TRACE_HEADER"]

#: Header of the per-sweep CSV files (t ms, V_recorded mV, V_model mV, I pA).
TRACE_HEADER = "t,V_recorded,V_model,I"


def trace_file_name(index):
    """The CSV file name of sweep ``index`` (the file's sweep number): ``sweep_<index>.csv``.

    Parameters
    ----------
    index : int

    Returns
    -------
    str
    """
    return f"sweep_{int(index)}.csv"


def write_json(result, path):
    """Write ``result.to_dict()`` as JSON (non-finite numbers as ``null``), atomically.

    Parameters
    ----------
    result : ValidationResult
    path : str or os.PathLike
        A ``.json`` file in an existing folder.
    """
    from hhsym.validate import check_output_path

    path = check_output_path(path, "json", suffixes=(".json",))
    text = json.dumps(result.to_dict(), indent=1, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text), error=HHSymError)


def _csv(t, V_recorded, V_model, I):
    """The CSV text of one sweep, every number as the shortest text that reads back to the same float."""
    rows = np.column_stack([t, V_recorded, V_model, I]).tolist()
    return TRACE_HEADER + "\n" + "".join(f"{a!r},{b!r},{c!r},{d!r}\n" for a, b, c, d in rows)


def write_traces(result, folder):
    """Write one CSV per sweep into ``folder`` (``sweep_<index>.csv``), swapped in whole.

    Parameters
    ----------
    result : ValidationResult
    folder : str or os.PathLike
        The folder (its parent must exist).  Columns ``t,V_recorded,V_model,I`` in ms, mV, mV,
        pA; V_model is ``nan`` where the model diverged.  Numbers are written exactly (shortest
        round-trip text): V_recorded reads back as the file's own samples.
    """
    from hhsym.validate import check_output_path

    folder = check_output_path(folder, "traces", what="folder")
    with atomic_folder(folder) as work:
        for k, row in enumerate(result.sweeps):
            text = _csv(result.t, result.V_recorded[k], result.V_model[k], result.I_pA[k])
            atomic_write(os.path.join(work, trace_file_name(row["index"])), lambda f, s=text: f.write(s),
                         error=HHSymError)


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table_text(result):
    """One line per sweep, recorded / model side by side, then the summary.

    Parameters
    ----------
    result : ValidationResult

    Returns
    -------
    str
    """
    head = (f"{'sweep':>6} {'I (pA)':>8} {'spikes':>9} {'Γ':>5} {'latency (ms)':>15} {'peak (mV)':>13} "
            f"{'half-width (ms)':>15} {'AHP (mV)':>13} {'sub RMS (mV)':>12}")
    lines = [head]
    for s in result.sweeps:
        r, m = s["recorded"], s["model"]
        if s["diverged"]:
            lines.append(f"{s['index']:>6} {s['I_step_pA']:>8.1f}  model diverged")
            continue
        pair = [f"{_fmt(r[k], spec)}/{_fmt(m[k], spec)}" for k, spec in
                (("first_spike_latency_ms", ".1f"), ("AP_peak_mV", ".1f"), ("AP_half_width_ms", ".2f"),
                 ("AHP_depth_mV", ".1f"))]
        lines.append(f"{s['index']:>6} {s['I_step_pA']:>8.1f} {r['n_spikes']:>4}/{m['n_spikes']:<4} "
                     f"{_fmt(s['gamma'], '.2f'):>5} {pair[0]:>15} {pair[1]:>13} {pair[2]:>15} {pair[3]:>13} "
                     f"{_fmt(s['subthreshold_rms_mV'], '.2f'):>12}")
    sm = result.summary
    lines.append(f"(recorded/model) {sm['n_sweeps']} sweep(s), {sm['n_diverged']} diverged; spikes "
                 f"{sm['n_spikes_recorded']} recorded / {sm['n_spikes_model']} model, count error "
                 f"{_fmt(sm['spike_count_error'], '.2f')}; median Γ {_fmt(sm['median_gamma'], '.2f')}; median "
                 f"subthreshold RMS {_fmt(sm['median_subthreshold_rms_mV'], '.2f')} mV")
    return "\n".join(lines)
