"""Write a fit (and its distilled model) up as a folder: Markdown + HTML report, PNG figures, LaTeX, JSON.

Used by ``hhsym report`` and ``hhsym demo``.  Everything is written atomically.
"""

from __future__ import annotations

import html
import json
import os
import time

import numpy as np

from hhsym.atomic import atomic_folder, atomic_write
from hhsym.errors import HHSymError, SimulationError
from hhsym.metrics import coincidence_factor, spike_times
from hhsym.estimate.quality import free_run
from hhsym.io import Trace
from hhsym.model import ConductanceModel

__all__ = ["write_report", "replay"]


def _write_text(path, text):
    atomic_write(path, lambda fh: fh.write(text), error=HHSymError)


def replay(model, trace):
    """Run ``model`` freely under the current recorded in ``trace``, from the recording's first V.

    Parameters
    ----------
    model : ConductanceModel or RateEstimator
        A closed-form model runs through :func:`hhsym.estimate.quality.free_run`
        (RK4 sub-stepped to at most 0.025 ms); a fitted estimator by its
        compile-free :meth:`replay` (the same RK4 scheme on the recording's grid;
        compiling a new network model takes tens of seconds).
    trace : Trace
        Recording on a uniform grid (ms, mV, µA/cm²).

    Returns
    -------
    Trace or None
        None when the model diverges under this current (reported in the text).
    """
    if not isinstance(model, ConductanceModel) and getattr(model, "gates_", None):
        try:
            return model.replay(trace)
        except SimulationError:
            return None
    V = free_run(model, trace.dt, trace.V, trace.I)
    return None if V is None else Trace(trace.t, V, trace.I)


def _gamma(reference, other, duration):
    if other is None:
        return float("nan")
    return coincidence_factor(spike_times(reference.t, reference.V), spike_times(other.t, other.V),
                              window=2.0, duration=duration)


def write_report(out, recordings, estimator, distillation=None, truth=None, heldout=None,
                 timings=None, title="hhsym report", notes=()):
    """Write the report folder.

    Parameters
    ----------
    out : str
        Output folder.  It is built beside ``out`` and swapped in whole when
        complete (:func:`hhsym.atomic.atomic_folder`): a crash or a signal
        leaves the previous report untouched, never a mix of two runs.
    recordings : list of Trace
        The training recordings.
    estimator : RateEstimator
        Fitted estimator (its ``model_`` is the hybrid model).
    distillation : Distillation or ConductanceModel, optional
        Closed-form model distilled from the estimator (a Distillation also
        gives the table of forms; a model, e.g. from ``load_model``, only the
        equations and curves).
    truth : ConductanceModel, optional
        Ground truth (simulated data only): rate errors and reference curves.
    heldout : Trace, optional
        A recording not used for fitting, for a prediction test (Γ, ±2 ms).
    timings : dict, optional
        Step name -> seconds, listed in the report.
    title : str
    notes : sequence of str
        Extra paragraphs.

    Returns
    -------
    dict
        ``report`` (path of report.md), ``metrics`` (dict), ``files`` (list).
    """
    if not hasattr(estimator, "v_range_") or not hasattr(estimator, "predict_rates"):
        from hhsym.errors import NotFittedError

        raise NotFittedError(f"write_report needs a fitted RateEstimator, got {estimator!r:.80}: call fit first")
    with atomic_folder(out) as work:
        result = write_report_into(work, recordings, estimator, distillation, truth=truth, heldout=heldout,
                                   timings=timings, title=title, notes=notes)
    return relocate(result, work, out)


def relocate(result, work, out):
    """``result`` of :func:`write_report_into` with paths inside ``work`` moved to ``out``."""
    def move(p):
        return os.path.join(out, os.path.relpath(p, work))

    return {**result, "report": move(result["report"]), "files": [move(f) for f in result["files"]]}


def write_report_into(out, recordings, estimator, distillation=None, truth=None, heldout=None,
                      timings=None, title="hhsym report", notes=()):
    """Write the report's files into the existing folder ``out`` (no swap; see :func:`write_report`)."""
    from hhsym import plotting

    from hhsym.model import ConductanceModel

    os.makedirs(out, exist_ok=True)
    files = []
    closed = distillation if isinstance(distillation, ConductanceModel) else None
    if closed is None and distillation is not None:
        closed = distillation.model
    table = distillation if closed is not distillation else None
    metrics = {}
    start = time.perf_counter()
    lo, hi = (float(v) for v in estimator.v_range_)
    models = {"hybrid (networks)": estimator if getattr(estimator, "gates_", None) else estimator.model_}
    if closed is not None:
        # the refinement's parametric model evaluates the same numbers with its rate constants as
        # kernel parameters: its kernel is already compiled (saves ~11 s per report)
        models["distilled (closed forms)"] = getattr(table, "parametric_model", None) or closed

    # training traces: data vs hybrid vs distilled
    for k, rec in enumerate(recordings[:2]):
        runs = [rec] + [replay(m, rec) for m in models.values()]
        labels = ["recording"] + list(models)
        shown = [(r, lab) for r, lab in zip(runs, labels) if r is not None]
        path = os.path.join(out, f"training_{k}.png")
        plotting.plot_traces([r for r, _ in shown], path, labels=[lab for _, lab in shown],
                             title=f"Training trace {k}")
        files.append(path)
        for (name, _), run in zip(models.items(), runs[1:]):
            metrics.setdefault(f"training Γ, {name}", []).append(_gamma(rec, run, rec.t[-1] - rec.t[0]))

    # rates, x_inf and tau
    v_grid = np.arange(-100.0, 50.0 + 1e-9, 0.5)
    learned = estimator.predict_rates(v_grid)
    reference = truth.evaluate_rates(v_grid) if truth is not None else None
    extra = closed.evaluate_rates(v_grid) if closed is not None else None
    path = os.path.join(out, "rates.png")
    plotting.plot_rates(learned, v_grid, path, reference=reference, v_range=(lo, hi), extra=extra,
                        title="Rate functions (shaded: voltage range supported by the data)")
    files.append(path)
    path = os.path.join(out, "gating.png")
    plotting.plot_gating(learned, v_grid, path, reference=reference, v_range=(lo, hi), extra=extra)
    files.append(path)

    # held-out prediction
    if heldout is not None:
        runs = {name: replay(m, heldout) for name, m in models.items()}
        if truth is not None:
            runs["truth"] = replay(truth, heldout)
        path = os.path.join(out, "heldout.png")
        shown = [(heldout, "recording")] + [(r, n) for n, r in runs.items() if r is not None]
        plotting.plot_traces([r for r, _ in shown], path, labels=[n for _, n in shown],
                             title="Held-out stimulus (not used for fitting)")
        files.append(path)
        for name, run in runs.items():
            if name != "truth":
                metrics[f"held-out Γ, {name}"] = _gamma(heldout, run, heldout.t[-1] - heldout.t[0])

    # rate errors against the truth
    error_rows = []
    if truth is not None:
        from hhsym.metrics import rate_errors

        span = (max(-75.0, lo), min(20.0, hi))
        err_net = rate_errors(estimator, truth, v_range=(-75.0, 20.0))
        err_net_sup = rate_errors(estimator, truth, v_range=span)
        err_dist = rate_errors(closed, truth, v_range=(-75.0, 20.0)) if closed is not None else {}
        for name in err_net:
            error_rows.append((name, err_net[name], err_net_sup[name], err_dist.get(name, float("nan"))))
        metrics["max rate error, networks, [-75, 20] mV"] = max(r[1] for r in error_rows)
        if closed is not None:
            metrics["max rate error, distilled, [-75, 20] mV"] = max(r[3] for r in error_rows)

    # model files
    if table is not None:
        tex = os.path.join(out, "model.tex")
        _write_text(tex, table.latex(standalone=True))
        table.to_json(os.path.join(out, "model.json"))
        files += [tex, os.path.join(out, "model.json")]
    elif closed is not None:
        tex = os.path.join(out, "model.tex")
        _write_text(tex, closed.latex() + "\n")
        files.append(tex)
    fit_path = os.path.join(out, "fit.npz")
    estimator.save(fit_path)
    files.append(fit_path)
    timings = dict(timings or {})
    timings["report"] = time.perf_counter() - start

    lines = [f"# {title}", ""]
    lines += [f"{p}\n" for p in notes]
    lines += [
        f"Training data: {len(recordings)} trace(s), {sum(r.duration for r in recordings):g} ms in all; "
        f"supported voltage range [{lo:.1f}, {hi:.1f}] mV.",
        "",
    ]
    if closed is not None:
        lines += ["## Recovered equations", "", "$$", closed.latex(), "$$", ""]
    if table is not None:
        lines += ["| rate | form | expression | max deviation from network |", "|---|---|---|---|"]
        for name, res in table.rates.items():
            lines.append(f"| {name} | {res.form} | `{res.expr}` | {res.max_rel_error:.2%} |")
        lines.append("")
    if error_rows:
        lines += ["## Rate errors against the truth (max relative error on a 1 mV grid)", "",
                  "| rate | networks, [-75, 20] mV | networks, supported range | distilled, [-75, 20] mV |",
                  "|---|---|---|---|"]
        lines += [f"| {n} | {a:.3g} | {b:.3g} | {c:.3g} |" for n, a, b, c in error_rows]
        lines.append("")
    lines += ["## Figures", ""]
    lines += [f"![{os.path.basename(f)}]({os.path.basename(f)})" for f in files if f.endswith(".png")]
    lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
    for k, v in metrics.items():
        shown = ", ".join(f"{x:.3f}" for x in v) if isinstance(v, list) else f"{v:.4g}"
        lines.append(f"| {k} | {shown} |")
    lines += ["", "## Timings", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in timings.items()]
    lines.append("")
    report = os.path.join(out, "report.md")
    text = "\n".join(lines)
    _write_text(report, text)
    _write_text(os.path.join(out, "report.html"), _html(text, title))
    _write_text(os.path.join(out, "metrics.json"),
                json.dumps({"metrics": metrics, "timings": timings}, indent=1, default=float))
    return {"report": report, "metrics": metrics, "files": files}


def _html(markdown, title):
    """A minimal, dependency-free HTML rendering (headings, paragraphs, tables, images, $$ math)."""
    body, table, math = [], [], []
    in_math = False

    def close_table():
        if table:
            body.append("<table border='1' cellspacing='0' cellpadding='4'>" + "".join(table) + "</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.strip() == "$$":
            close_table()
            if in_math:
                body.append("<div>$$" + html.escape("\n".join(math)) + "$$</div>")
                math.clear()
            in_math = not in_math
            continue
        if in_math:
            math.append(line)
            continue
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                cells = "".join(f"<td>{html.escape(c.strip())}</td>" for c in line.strip("|").split("|"))
                table.append(f"<tr>{cells}</tr>")
            continue
        close_table()
        if line.startswith("!["):
            src = line[line.index("(") + 1:-1]
            body.append(f"<p><img src='{html.escape(src)}' style='max-width:100%'></p>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    close_table()
    # MathJax typesets the equations when the page is viewed online; offline they show as TeX.
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<script async src='https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js'></script>"
            "</head><body>\n" + "\n".join(body) + "\n</body></html>\n")
