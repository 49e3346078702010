"""``hhsym inspect`` and the loading of lab files for every command that reads traces.

Plugged into :mod:`hhsym.cli` by ``add_parser(sub)`` (the ``inspect`` subcommand, whose
``func`` is :func:`run`); the other commands call :func:`add_recording_arguments` on their
sub-parsers and :func:`load_for_cli` to read any file.
"""

from __future__ import annotations

import argparse
import os

from hhsym.errors import invalid

__all__ = ["add_parser", "run", "load_for_cli", "load_traces", "add_recording_arguments", "parse_sweeps",
           "area_line"]

_EPILOG = """examples:
  hhsym inspect cell.abf --json cell.json --plot cell.png
  hhsym inspect "B6_Ch3_IDRest_*.ibw"                    # I paired by name (_Ch0_)
  hhsym inspect B6_Ch3_IDRest_181.ibw --current B6_Ch0_IDRest_181.ibw
  hhsym inspect cell.nwb --sweeps 0-3,7
JSON keys: n_sweeps, sampling_rate_hz, sweeps[{index, I_step_pA, n_spikes, V_rest_mV}],
passive{V_rest_mV, R_in_MOhm, tau_m_ms, C_pF, sag_ratio}, noise{white_mV, slow_mV}.
"""


def parse_sweeps(text):
    """Sweep numbers from a command-line list such as ``"0,2,5-7"``.

    Parameters
    ----------
    text : str, int, sequence of int or None
        Comma-separated numbers and inclusive ranges ``a-b``; None = all sweeps.

    Returns
    -------
    list of int or None
    """
    if text is None or isinstance(text, (list, tuple)):
        return None if text is None else [int(x) for x in text]
    if isinstance(text, int):
        return [text]
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
                a, b = int(a), int(b)
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise invalid("--sweeps", text, "sweep numbers and ranges separated by commas, "
                          "e.g. 0,2,5-7") from None
    return out


def add_recording_arguments(parser, current=True):
    """Add ``--sweeps``, ``--current``, ``--area``, ``--capacitance``, ``--specific-capacitance``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A sub-parser of a command that reads traces.
    current : bool
        Add ``--current`` (not for ``fit-many``, whose Igor cells pair their currents by name).
    """
    parser.add_argument("--sweeps", metavar="LIST", help="sweep numbers as the file numbers them, e.g. 0,2,5-7")
    if current:
        parser.add_argument("--current", metavar="FILE", help="Igor: the current wave(s) (file or glob); "
                            "default paired by name (_Ch3_ -> _Ch0_)")
    parser.add_argument("--area", type=float, metavar="CM2", help="membrane area (cm²) turning pA into µA/cm²")
    parser.add_argument("--capacitance", type=float, metavar="PF",
                        help="whole-cell capacitance (pF) giving the area at --specific-capacitance")
    parser.add_argument("--specific-capacitance", type=float, default=1.0, metavar="UF_CM2",
                        help="specific membrane capacitance (µF/cm², default 1)")


def load_for_cli(path, current=None, sweeps=None, area=None, capacitance=None, specific_capacitance=1.0):
    """Read any trace or lab file as hhsym traces (µA/cm²) and as a recording (pA).

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv``/``.npz`` (hhsym traces), ``.abf``, ``.nwb``, ``.ibw`` (or a glob of Igor waves).
    current : str, optional
        Igor only: the current wave(s).
    sweeps : str or sequence of int, optional
        Sweep numbers (``"0,2,5-7"`` or a list); default all.
    area : float, optional
        Membrane area (cm²).
    capacitance : float, optional
        Whole-cell capacitance (pF).
    specific_capacitance : float, optional
        µF/cm² (default 1), with ``capacitance`` or the estimate.

    Returns
    -------
    traces : TraceSet
        t (ms), V (mV), I (µA/cm²).  For hhsym files exactly what
        :func:`hhsym.io.read_traces` returns (rows selected by ``sweeps``); otherwise
        ``meta["membrane_area"]`` = ``{area_cm2, source ("area", "capacitance", "estimated"),
        capacitance_pF, specific_capacitance_uF_per_cm2}`` and ``meta["source"]`` the file's
        metadata.  Without ``area``/``capacitance`` the capacitance is estimated from the
        passive step responses.
    recording : Recording
        The same sweeps in the lab's units (pA).

    Raises
    ------
    TraceFileError
        Unreadable file, missing channel or units, or no area obtainable.
    InvalidArgumentError
        Both ``area`` and ``capacitance``, non-positive values, or an area for an hhsym file
        (its currents are densities already).
    """
    from hhsym.io.reader import FORMATS, read

    sweeps = parse_sweeps(sweeps)
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if FORMATS.get(ext) == "hhsym":
        from hhsym.io import TraceSet, read_traces

        if area is not None or capacitance is not None:
            raise invalid("--area/--capacitance", area if area is not None else capacitance,
                          "no area for an hhsym .csv/.npz file (its currents are µA/cm² already)")
        rec = read(path, current=current, sweeps=sweeps)
        ts = read_traces(path)
        if sweeps is not None:
            rows = rec.sweep_numbers
            ts = TraceSet(ts.t, ts.V[rows], ts.I[rows],
                          {n: a[rows] for n, a in ts.states.items()}, ts.meta)
        return ts, rec
    rec = read(path, current=current, sweeps=sweeps)
    return rec.to_traces(area_cm2=area, capacitance_pF=capacitance,
                         specific_capacitance=specific_capacitance), rec


def load_traces(paths, current=None, sweeps=None, area=None, capacitance=None, specific_capacitance=1.0,
                log=None):
    """Every trace of every file, in µA/cm², as the commands that read traces use them.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Files (or Igor globs) read by :func:`load_for_cli`.
    current, sweeps, area, capacitance, specific_capacitance
        As :func:`load_for_cli` (Igor current wave(s); sweep numbers; cm²; pF; µF/cm²), for every file.
    log : callable, optional
        Called with one line per lab file: its membrane area (given or estimated).

    Returns
    -------
    list of Trace
        t (ms), V (mV), I (µA/cm²), the files' sweeps in order.
    """
    traces = []
    for path in paths:
        loaded, _ = load_for_cli(path, current=current, sweeps=sweeps, area=area, capacitance=capacitance,
                                 specific_capacitance=specific_capacitance)
        line = area_line(loaded)  # '' for hhsym files (their currents are densities already)
        if line and log is not None:
            log(f"{path}: {line}")
        traces.extend(loaded[k] for k in range(len(loaded)))
    return traces


def area_line(traces):
    """One line reporting the membrane area behind a :func:`load_for_cli` result ('' if none).

    Parameters
    ----------
    traces : TraceSet

    Returns
    -------
    str
    """
    a = traces.meta.get("membrane_area")
    if not a:
        return ""
    how = {"area": "given", "capacitance": "from the given capacitance", "file": "from the file",
           "estimated": "estimated from the passive step responses"}.get(a["source"], a["source"])
    return (f"membrane area {a['area_cm2']:.4g} cm² ({how}; C = {a['capacitance_pF']:.4g} pF at "
            f"{a['specific_capacitance_uF_per_cm2']:g} µF/cm²)")


def add_parser(subparsers):
    """Add the ``inspect`` subcommand to the ``hhsym`` sub-parsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``inspect`` parser (its ``func`` default is :func:`run`).
    """
    p = subparsers.add_parser("inspect", help="summarise a recording: sweeps, passive properties, noise",
                              epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="ABF, NWB, Igor .ibw (or a quoted glob), or hhsym CSV/NPZ")
    p.add_argument("--current", metavar="FILE", help="Igor: the current wave(s); default paired by name")
    p.add_argument("--sweeps", metavar="LIST", help="sweep numbers, e.g. 0,2,5-7 (default all)")
    p.add_argument("--channel", help="ABF: ADC channel of V (int); NWB: electrode name")
    p.add_argument("--json", metavar="OUT", help="write the summary as JSON here")
    p.add_argument("--plot", metavar="OUT.png", help="write the figure here")
    p.add_argument("--no-bridge-compensation", action="store_true",
                   help="keep the bridge (series-resistance) jump in the input resistance")
    p.set_defaults(func=run)
    return p


def run(args):
    """Run ``hhsym inspect``: print the summary, write ``--json`` / ``--plot``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the parser of :func:`add_parser`.

    Returns
    -------
    int
        0 on success.  Errors propagate as :class:`~hhsym.errors.HHSymError`: an output path that
        cannot be written or a bad ``--sweeps`` as :class:`~hhsym.errors.InvalidArgumentError`
        (checked before any work; ``hhsym`` exits 2), an unreadable file as
        :class:`~hhsym.errors.TraceFileError` (exit 1).
    """
    from hhsym.analysis.inspect import inspect, summary_text
    from hhsym.validate import check_output_path

    for path, option, suffixes in ((args.json, "--json", (".json",)),
                                   (args.plot, "--plot", (".png", ".pdf", ".svg"))):
        if path is not None:  # before any work
            check_output_path(path, option, suffixes=suffixes)
    channel = args.channel
    if channel is not None and channel.lstrip("-").isdigit():
        channel = int(channel)
    ins = inspect(args.file, current=args.current, sweeps=parse_sweeps(args.sweeps), channel=channel,
                  json_path=args.json, plot_path=args.plot,
                  compensate_bridge=not args.no_bridge_compensation)
    print(summary_text(ins))
    for what, path in (("summary", args.json), ("figure", args.plot)):
        if path:
            print(f"{what} -> {path}")
    return 0
