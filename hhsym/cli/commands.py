"""What each ``hhsym`` command does: read the inputs, call the public API, write the results."""

from __future__ import annotations

import sys
import time

from hhsym.errors import InvalidArgumentError

__all__ = ["parse_stimulus", "UsageError", "EXIT_POOR_FIT"]


#: Exit code of a finished fit whose result does not reproduce its training data.
EXIT_POOR_FIT = 3


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


def _verbosity(args):
    """0 with --quiet, 2 with --verbose (a line per iteration), else 1 (stage lines and progress bars)."""
    return 0 if args.quiet else (2 if getattr(args, "verbose", False) else 1)


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


def _recording_options(args):
    """The recording options (``--sweeps``, ``--current``, ``--area``, ...) as keyword arguments."""
    return dict(current=getattr(args, "current", None), sweeps=getattr(args, "sweeps", None),
                area=getattr(args, "area", None), capacitance=getattr(args, "capacitance", None),
                specific_capacitance=getattr(args, "specific_capacitance", 1.0))


def _read_traces(paths, args=None):
    """Every trace of every file (hhsym CSV/NPZ, ABF, NWB, Igor IBW), in µA/cm².

    With ``args`` the recording options (``--sweeps``, ``--current``, ``--area``,
    ``--capacitance``, ``--specific-capacitance``) apply; a lab file's membrane
    area (given or estimated) is printed.
    """
    from hhsym.io.cli import load_traces

    return load_traces(paths, **(_recording_options(args) if args is not None else {}), log=print)


def _bridge_number(text):
    """``--bridge``'s value: a number of MΩ, else the text itself ("fit", "edges"; the estimator names others)."""
    try:
        return float(text)
    except ValueError:
        return text


def _estimator_options(args):
    """``hhsym fit``'s estimator options as keyword arguments of the route's estimator (those given)."""
    out = dict(random_state=args.seed)
    if args.time_limit is not None:  # else each estimator's own default budget
        out["time_limit"] = args.time_limit
    if args.hidden is not None:
        out["hidden"] = tuple(args.hidden)
    if args.free is not None:
        out["free"] = args.free
    if getattr(args, "fixed", None) is not None:
        out["fixed"] = args.fixed
    if getattr(args, "bridge", None) is not None:
        out["bridge"] = _bridge_number(args.bridge)
    if getattr(args, "kinetics", None) is not None:
        out["kinetics"] = False if args.kinetics.strip().lower() == "none" else args.kinetics
    if getattr(args, "likelihood", None) is not None:
        from hhsym.estimate.likelihood import ML_WINDOWS

        out["ml_windows"] = {"on": ML_WINDOWS, "off": (), "auto": None}[args.likelihood]
    return out


def _cmd_fit(args):
    from hhsym.estimate.files import fit_files

    _writable(args.out, "--out", (".npz",))
    model = _model_from_args(args)
    est, traces = fit_files(args.traces, args.out, model, route=args.route, **_recording_options(args), log=print,
                            verbose=_verbosity(args), **_estimator_options(args))
    lo, hi = est.v_range_
    if hasattr(est, "cost_"):
        print(f"fitted {len(traces)} trace(s): loss {est.cost_:.4g} mV^2, supported range "
              f"[{lo:.1f}, {hi:.1f}] mV, {est.fit_time_:.1f} s -> {args.out}")
        print(est.quality_)
    else:  # the cell route: its summary ends with the verdict
        print(est.summary())
        print(f"fitted {len(traces)} sweep(s), {est.fit_time_:.1f} s -> {args.out}")
    return _judged(est, args, args.out)


def _cmd_fit_many(args):
    from hhsym.batch import fit_many

    model = _model_from_args(args)
    options = _recording_options(args)
    del options["current"]  # Igor currents are paired by name, cell by cell
    summary = fit_many(args.directory, args.out, model, workers=args.workers, scheduler=args.scheduler,
                       route=args.route, **options, verbose=_verbosity(args), **_estimator_options(args))
    print(summary.table())
    counts = summary.outcomes()  # a skipped cell counts as what it was when fitted
    if counts.get("failed"):
        print(f"hhsym fit-many: {counts['failed']} of {len(summary.cells)} cell(s) failed; their errors are "
              f"in {summary.summary_path}", file=sys.stderr)
        return 1
    if counts.get("poor"):
        print(f"hhsym fit-many: {counts['poor']} of {len(summary.cells)} cell(s) with a poor fit (written "
              "anyway; see the table)", file=sys.stderr)
        if args.accept_poor_fit:
            print("hhsym: --accept-poor-fit given: exit code 0", file=sys.stderr)
            return 0
        return EXIT_POOR_FIT
    return 0


def _cmd_distill(args):
    from hhsym.distill import distill_files

    if not (args.json or args.latex):
        raise UsageError("give --json MODEL.json and/or --latex MODEL.tex")
    _writable(args.json, "--json", (".json",))
    _writable(args.latex, "--latex", (".tex",))
    start = time.perf_counter()
    dist = distill_files(args.fit, json_path=args.json, latex_path=args.latex, backend=args.backend,
                         traces=_read_traces(args.trace, args) if args.trace else (), loss=args.loss,
                         time_limit=args.time_limit, verbose=_verbosity(args))
    for name, res in dist.rates.items():
        print(f"{name:8s} {res.form:14s} {res.expr}")
    written = " and ".join(p for p in (args.json, args.latex) if p)
    print(f"distilled in {time.perf_counter() - start:.1f} s -> {written}")
    return 0


def _cmd_forms(args):
    from hhsym.estimate import FormEstimator
    from hhsym.export.document import write_text

    if not (args.json or args.latex):
        raise UsageError("give --json MODEL.json and/or --latex MODEL.tex")
    _writable(args.json, "--json", (".json",))
    _writable(args.latex, "--latex", (".tex",))
    model = _model_from_args(args)
    traces = _read_traces(args.traces, args)
    est = FormEstimator(model, start=args.start, n_starts=args.starts, roles=args.roles, search=args.search,
                        random_state=args.seed, time_limit=args.time_limit, verbose=_verbosity(args),
                        free=args.free or (), fixed=args.fixed or ()).fit(traces)
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


def _cmd_templates(args):
    from hhsym.estimate.templates import DEFAULT_TEMPLATES, compare_templates

    out = _writable(args.json, "--json", (".json",))
    specs = DEFAULT_TEMPLATES if args.templates is None else [t.strip() for t in args.templates.split(",") if t.strip()]
    result = compare_templates(args.recording, args.train, args.validate, specs, area=args.area,
                               time_limit=args.time_limit, random_state=args.seed, log=print)
    print(result.table())
    print(f"best on the held-out sweeps: {result.best['template']}")
    if out is not None:
        result.write_json(out)
    return 0


def _cmd_demo(args):
    if args.real:
        from hhsym.demo_real import run_real_demo

        if args.noise:
            raise UsageError("--noise applies to the simulated demo, not to --real (a recording has its own)")
        out = _writable(args.out or "hhsym-demo-real", "--out", what="folder")
        run_real_demo(out, verbose=True, time_limit=args.time_limit)
        return 0
    from hhsym.demo import run_demo

    out = _writable(args.out or "hhsym-demo", "--out", what="folder")
    run_demo(out, verbose=True, noise=args.noise)
    return 0


def _cmd_validate(args):
    from hhsym.analysis.validation import validate_fit

    _writable(args.json, "--json", (".json",))
    _writable(args.traces, "--traces", what="folder")
    _writable(args.report, "--report", what="folder")
    result = validate_fit(args.fit, args.recording, args.sweeps, **{k: v for k, v in _recording_options(args).items()
                                                                    if k != "sweeps"})
    area = result.membrane_area
    if area.get("area_cm2") is not None and area["source"] != "file":
        print(f"membrane area {area['area_cm2']:.4g} cm² ({area['note']})")
    print(result.table())
    if args.json:
        result.write_json(args.json)
        print(f"results -> {args.json}")
    if args.traces:
        result.write_traces(args.traces)
        print(f"traces -> {args.traces}")
    if args.report:
        print(f"report -> {result.write_report(args.report)}")
    return 0

