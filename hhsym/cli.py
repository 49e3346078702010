"""The ``hhsym`` command line.  It calls the public API only.

Exit codes:

* 0 — success;
* 1 — failure (unreadable file, diverging model, ...), with a one-line reason
  (the traceback only with ``--debug``);
* 2 — usage error: a bad option value or an output path that cannot be
  written, reported before any work starts;
* 3 — poor fit: ``fit`` or ``forms`` finished and wrote its result, but the
  fitted model does not reproduce the training recordings (the reason is
  printed; ``--accept-poor-fit`` turns this into 0);
* 130 / 143 — interrupted (Ctrl-C / SIGTERM); no half-written file is left.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from hhsym.errors import ArgumentTypeError, InvalidArgumentError
from hhsym.export.cli import add_parser as _add_export_parser
from hhsym.io.cli import add_parser as _add_inspect_parser
from hhsym.io.cli import add_recording_arguments

__all__ = ["main", "parse_stimulus"]

_EPILOG_SIMULATE = """examples:
  hhsym simulate --stimulus step:10,10,90 --t-stop 100 --out trace.csv --plot trace.png
  hhsym simulate --model hh --param g_Na=100 --stimulus ou:8,3,2,1 --method exp_euler --out noisy.npz
stimulus specs (µA/cm², ms; several --stimulus are summed):
  step:AMP,START,STOP   ramp:A0,A1,START,STOP   pulses:AMP,WIDTH,PERIOD[,START,STOP]
  sine:AMP,FREQ_HZ[,START,STOP]   ou:MEAN,SIGMA,TAU,SEED   file:PATH (CSV/NPZ trace; its I is used)
"""

_EPILOG_FIT = """examples:
  hhsym fit cell_0.csv cell_1.csv --out fit.npz
  hhsym fit recording.npz --model hh --param g_Na=100 --param C_m=0.9 --out fit.npz
"""

_EPILOG_DISTILL = """examples:
  hhsym distill fit.npz --json model.json --latex model.tex
  hhsym distill fit.npz --json model.json --trace cell_0.csv --trace cell_1.csv   # refine constants
"""

_EPILOG_FORMS = """examples:
  hhsym forms cell_0.csv cell_1.csv --json model.json --latex model.tex
  hhsym forms noisy.npz --model hh --no-search --seed 1 --json model.json
For noisy recordings (from ~0.05 mV of noise on V, where 'hhsym fit' warns): the
forms and constants are fitted directly by output error, without networks.
"""

_EPILOG_REPORT = """examples:
  hhsym report fit.npz cell_0.csv cell_1.csv --model-json model.json --out report/
  hhsym report fit.npz sim.npz --heldout test.csv --truth --model hh --out report/
"""

_EPILOG_DEMO = """examples:
  hhsym demo                 # writes ./hhsym-demo/
  hhsym demo --out results/  # elsewhere
"""


#: Exit code of a finished fit whose result does not reproduce its training data.
EXIT_POOR_FIT = 3


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


def _number(kind, minimum, strict, accepted):
    """An argparse type: ``kind`` (int/float) >= (or >) ``minimum``, with a message naming what is accepted."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {accepted}") from None
        if value != value or value in (float("inf"), float("-inf")) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"{text!r} is not {accepted}")
        return value

    return convert


_SEED = _number(int, 0, False, "a non-negative integer")
_POSITIVE = _number(float, 0.0, True, "a positive number")
_NON_NEGATIVE = _number(float, 0.0, False, "a non-negative number")
_POSITIVE_INT = _number(int, 1, False, "a positive integer")


def _writable(path, option, suffixes=None, what="file"):
    """Check an output path before any work; a problem is a usage error naming the option."""
    from hhsym.validate import check_output_path

    if path is None:
        return None
    try:
        return check_output_path(path, option, suffixes=suffixes, what=what)
    except InvalidArgumentError as exc:
        raise UsageError(str(exc)) from None


def _judged(est, args, out):
    """Print a fit's verdict; the exit code (0, or EXIT_POOR_FIT unless --accept-poor-fit)."""
    quality = getattr(est, "quality_", None)
    if quality is None or quality.ok:
        return 0
    print(f"hhsym {args.command}: poor fit (written to {out} anyway): {quality.reason}", file=sys.stderr)
    if args.accept_poor_fit:
        print("hhsym: --accept-poor-fit given: exit code 0", file=sys.stderr)
        return 0
    return EXIT_POOR_FIT


def parse_stimulus(spec):
    """Build a stimulus from a command-line spec such as ``"step:10,10,90"``.

    Parameters
    ----------
    spec : str
        ``kind:comma-separated numbers`` (µA/cm², ms, Hz) or ``file:PATH``.

    Returns
    -------
    hhsym.stimuli.Stimulus
    """
    from hhsym import stimuli
    from hhsym.io import read_trace

    kind, _, rest = spec.partition(":")
    if kind == "file":
        tr = read_trace(rest)
        return stimuli.FromArray(tr.t, tr.I)
    makers = {
        "step": (stimuli.Step, (3,)),
        "ramp": (stimuli.Ramp, (4,)),
        "pulses": (stimuli.PulseTrain, (3, 4, 5)),
        "sine": (stimuli.Sine, (2, 3, 4)),
        "ou": (stimuli.OUNoise, (4,)),
    }
    if kind not in makers:
        raise UsageError(f"unknown stimulus kind {kind!r} in {spec!r}: accepted are {', '.join([*makers, 'file'])}")
    try:
        numbers = [float(x) for x in rest.split(",")] if rest else []
    except ValueError:
        raise UsageError(f"stimulus {spec!r}: the values after ':' must be numbers separated by commas") from None
    maker, counts = makers[kind]
    if len(numbers) not in counts:
        raise UsageError(f"stimulus {spec!r}: {kind} takes {' or '.join(map(str, counts))} numbers")
    if kind == "ou":
        numbers[3] = int(numbers[3])
    return maker(*numbers)


def _model_from_args(args):
    from hhsym.library import get_model

    overrides = {}
    for item in args.param or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--param {item!r}: expected NAME=VALUE, e.g. g_Na=100")
        try:
            overrides[name] = float(value)
        except ValueError:
            raise UsageError(f"--param {item!r}: {value!r} is not a number") from None
    return get_model(args.model, **overrides)


def _cmd_simulate(args):
    import hhsym

    _writable(args.out, "--out", (".csv", ".npz"))
    _writable(args.plot, "--plot", (".png", ".pdf", ".svg"))
    model = _model_from_args(args)
    stims = [parse_stimulus(s) for s in args.stimulus]
    stimulus = stims[0]
    for s in stims[1:]:
        stimulus = stimulus + s
    start = time.perf_counter()
    trace = hhsym.simulate(model, stimulus, args.t_stop, dt=args.dt, method=args.method)
    wall = time.perf_counter() - start
    trace.save(args.out)
    print(f"simulated {model.name} for {args.t_stop:g} ms with {args.method} in {wall:.2f} s -> {args.out}")
    if args.plot:
        from hhsym.plotting import plot_traces

        plot_traces(trace, args.plot, title=f"{model.name}: {stimulus!r}")
        print(f"figure -> {args.plot}")
    return 0


def _read_traces(paths, args=None):
    """Every trace of every file (hhsym CSV/NPZ, ABF, NWB, Igor IBW), in µA/cm².

    With ``args`` the recording options (``--sweeps``, ``--current``, ``--area``,
    ``--capacitance``, ``--specific-capacitance``) apply; a lab file's membrane
    area (given or estimated) is printed.
    """
    from hhsym.io.cli import area_line, load_for_cli

    traces = []
    for path in paths:
        options = {}
        if args is not None:
            options = dict(current=getattr(args, "current", None), sweeps=getattr(args, "sweeps", None),
                           area=getattr(args, "area", None), capacitance=getattr(args, "capacitance", None),
                           specific_capacitance=getattr(args, "specific_capacitance", 1.0))
        loaded, recording = load_for_cli(path, **options)
        if recording is not None:
            print(f"{path}: {area_line(loaded)}")
        traces.extend(loaded[k] for k in range(len(loaded)))
    return traces


def _cmd_fit(args):
    from hhsym.estimate import RateEstimator

    _writable(args.out, "--out", (".npz",))
    model = _model_from_args(args)
    traces = _read_traces(args.traces, args)
    est = RateEstimator(model, hidden=tuple(args.hidden), random_state=args.seed,
                        time_limit=args.time_limit, verbose=0 if args.quiet else 1)
    est.fit(traces)
    est.save(args.out)
    lo, hi = est.v_range_
    print(f"fitted {len(traces)} trace(s): loss {est.cost_:.4g} mV^2, supported range "
          f"[{lo:.1f}, {hi:.1f}] mV, {est.fit_time_:.1f} s -> {args.out}")
    print(est.quality_)
    return _judged(est, args, args.out)


def _cmd_distill(args):
    from hhsym.distill import distill_files

    if not (args.json or args.latex):
        raise UsageError("give --json MODEL.json and/or --latex MODEL.tex")
    _writable(args.json, "--json", (".json",))
    _writable(args.latex, "--latex", (".tex",))
    start = time.perf_counter()
    dist = distill_files(args.fit, json_path=args.json, latex_path=args.latex, backend=args.backend,
                         traces=_read_traces(args.trace, args) if args.trace else (), loss=args.loss, verbose=0 if args.quiet else 1)
    for name, res in dist.rates.items():
        print(f"{name:8s} {res.form:14s} {res.expr}")
    written = " and ".join(p for p in (args.json, args.latex) if p)
    print(f"distilled in {time.perf_counter() - start:.1f} s -> {written}")
    return 0


def _cmd_forms(args):
    from hhsym.estimate import FormEstimator
    from hhsym.distill.document import write_text

    if not (args.json or args.latex):
        raise UsageError("give --json MODEL.json and/or --latex MODEL.tex")
    _writable(args.json, "--json", (".json",))
    _writable(args.latex, "--latex", (".tex",))
    model = _model_from_args(args)
    traces = _read_traces(args.traces, args)
    est = FormEstimator(model, search=args.search, random_state=args.seed, time_limit=args.time_limit,
                        verbose=0 if args.quiet else 1).fit(traces)
    if args.json:
        est.to_json(args.json)
    if args.latex:
        write_text(est.latex(standalone=True), args.latex)
    print(est.summary())
    written = " and ".join(p for p in (args.json, args.latex) if p)
    print(f"-> {written}")
    return _judged(est, args, written)


def _cmd_report(args):
    from hhsym.distill import load_model
    from hhsym.estimate import load
    from hhsym.report import write_report

    _writable(args.out, "--out", what="folder")
    estimator = load(args.fit)
    recordings = _read_traces(args.traces, args)
    closed = load_model(args.model_json) if args.model_json else None
    heldout = _read_traces([args.heldout])[0] if args.heldout else None
    truth = _model_from_args(args) if args.truth else None
    result = write_report(args.out, recordings, estimator, closed, truth=truth, heldout=heldout)
    print(f"report -> {result['report']}")
    return 0


def _cmd_demo(args):
    from hhsym.demo import run_demo

    _writable(args.out, "--out", what="folder")
    run_demo(args.out, verbose=True, noise=args.noise)
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="hhsym",
        description="Learn Hodgkin-Huxley rate functions from V(t) and I(t) and return them as equations.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sim = sub.add_parser("simulate", help="simulate a model under a current protocol",
                         epilog=_EPILOG_SIMULATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sim.add_argument("--model", default="hh", help="library model (default: hh)")
    sim.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a parameter")
    sim.add_argument("--stimulus", action="append", required=True, metavar="SPEC", help="current protocol")
    sim.add_argument("--t-stop", type=_POSITIVE, default=100.0, help="duration in ms (default 100)")
    sim.add_argument("--dt", type=_POSITIVE, default=0.01, help="step / sampling interval in ms (default 0.01)")
    sim.add_argument("--method", default="rk4", choices=["rk4", "exp_euler", "dopri5"])
    sim.add_argument("--out", required=True, help="output trace (.csv or .npz)")
    sim.add_argument("--plot", help="also save a PNG figure here")
    sim.set_defaults(func=_cmd_simulate)

    fit = sub.add_parser("fit", help="learn the rate functions from recorded traces",
                         epilog=_EPILOG_FIT, formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("traces", nargs="+", metavar="TRACE", help="traces: hhsym CSV/NPZ, ABF, NWB or Igor IBW")
    add_recording_arguments(fit)
    fit.add_argument("--model", default="hh", help="template model whose rates are learned (default: hh)")
    fit.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a template parameter")
    fit.add_argument("--hidden", type=_POSITIVE_INT, nargs="+", default=[16], help="hidden widths (default 16)")
    fit.add_argument("--seed", type=_SEED, default=0, help="random seed (default 0)")
    fit.add_argument("--time-limit", type=_POSITIVE, default=None, help="soft wall-time budget in s")
    fit.add_argument("--accept-poor-fit", action="store_true",
                     help=f"exit 0 even when the fit does not reproduce its training data (else {EXIT_POOR_FIT})")
    fit.add_argument("--out", required=True, help="fitted estimator (.npz)")
    fit.add_argument("--quiet", action="store_true", help="no progress lines")
    fit.set_defaults(func=_cmd_fit)

    dis = sub.add_parser("distill", help="turn a fit into closed-form equations (JSON, LaTeX)",
                         epilog=_EPILOG_DISTILL, formatter_class=argparse.RawDescriptionHelpFormatter)
    dis.add_argument("fit", metavar="FIT.npz", help="a fit written by 'hhsym fit'")
    dis.add_argument("--json", help="write the model description here")
    dis.add_argument("--latex", help="write a standalone LaTeX document here")
    dis.add_argument("--backend", default="auto", choices=["auto", "forms", "operon", "pysr"])
    dis.add_argument("--trace", action="append", metavar="TRACE",
                     help="the traces the fit was made on: refine the constants against them")
    add_recording_arguments(dis)
    dis.add_argument("--loss", default="shooting", choices=["shooting", "output"],
                     help="refinement loss: the estimator's (default) or output error with a form search "
                          "(slower; needs forms picked on the networks within ~20%% of the truth)")
    dis.add_argument("--quiet", action="store_true", help="no progress lines")
    dis.set_defaults(func=_cmd_distill)

    frm = sub.add_parser("forms", help="fit closed-form rates directly to (noisy) traces (JSON, LaTeX)",
                         epilog=_EPILOG_FORMS, formatter_class=argparse.RawDescriptionHelpFormatter)
    frm.add_argument("traces", nargs="+", metavar="TRACE", help="traces: hhsym CSV/NPZ, ABF, NWB or Igor IBW")
    add_recording_arguments(frm)
    frm.add_argument("--model", default="hh", help="template model whose rates are fitted (default: hh)")
    frm.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a template parameter")
    frm.add_argument("--search", action=argparse.BooleanOptionalAction, default=True,
                     help="search each rate's form by the output error (default) or keep the role forms")
    frm.add_argument("--seed", type=_SEED, default=0, help="random seed of the role search (default 0)")
    frm.add_argument("--time-limit", type=_POSITIVE, default=None, help="soft budget in s of each search stage")
    frm.add_argument("--accept-poor-fit", action="store_true",
                     help=f"exit 0 even when the fit does not reproduce its training data (else {EXIT_POOR_FIT})")
    frm.add_argument("--json", help="write the model description here")
    frm.add_argument("--latex", help="write a standalone LaTeX document here")
    frm.add_argument("--quiet", action="store_true", help="no progress lines")
    frm.set_defaults(func=_cmd_forms)

    rep = sub.add_parser("report", help="write a report folder for a fit (and its distilled model)",
                         epilog=_EPILOG_REPORT, formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("fit", metavar="FIT.npz")
    rep.add_argument("traces", nargs="+", metavar="TRACE", help="the training traces (any format hhsym reads)")
    add_recording_arguments(rep)
    rep.add_argument("--model-json", help="a distilled model written by 'hhsym distill --json'")
    rep.add_argument("--heldout", metavar="TRACE", help="a recording not used for fitting")
    rep.add_argument("--truth", action="store_true",
                     help="the data are simulated from --model: compare rates with it")
    rep.add_argument("--model", default="hh", help="ground-truth model for --truth (default hh)")
    rep.add_argument("--param", action="append", metavar="NAME=VALUE")
    rep.add_argument("--out", required=True, help="report folder")
    rep.set_defaults(func=_cmd_report)

    demo = sub.add_parser("demo", help="the whole pipeline on simulated HH data, with a report",
                          epilog=_EPILOG_DEMO, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--out", default="hhsym-demo", help="output folder (default ./hhsym-demo)")
    demo.add_argument("--noise", type=_NON_NEGATIVE, default=0.0,
                      help="Gaussian noise on the recorded V (mV, default 0; see the README's limitations)")
    demo.set_defaults(func=_cmd_demo)

    _add_inspect_parser(sub)
    _add_export_parser(sub)
    return parser


def main(argv=None):
    """Run the command line; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on failure, 2 on a usage error.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    previous = _on_signals()
    try:
        return args.func(args)
    except (UsageError, InvalidArgumentError, ArgumentTypeError) as exc:
        if args.debug:
            raise
        parser.print_usage(sys.stderr)
        print(f"hhsym {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hhsym: interrupted", file=sys.stderr)
        return 130
    except _Terminated as exc:
        print(f"hhsym: terminated by signal {exc.args[0]}", file=sys.stderr)
        return 128 + exc.args[0]
    except Exception as exc:  # one-line reason unless --debug
        if args.debug:
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"hhsym {args.command}: {type(exc).__name__}: {reason}", file=sys.stderr)
        return 1
    finally:
        _restore_signals(previous)


class _Terminated(BaseException):
    """SIGTERM/SIGHUP turned into an exception, so that every cleanup (temporary files) runs."""


def _raise_terminated(signum, frame):
    raise _Terminated(signum)


def _on_signals():
    """Route SIGTERM and SIGHUP through :class:`_Terminated` (main thread only); the previous handlers."""
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, _raise_terminated)
        except ValueError:  # not the main thread
            pass
    return previous


def _restore_signals(previous):
    for sig, handler in previous.items():
        signal.signal(sig, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
