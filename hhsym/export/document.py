r"""Export of a :class:`~hhsym.distill.distillation.Distillation`: JSON, LaTeX, files.

JSON (``format: "hhsym.distillation/1"``)
    ``model``: the complete model description of
    :meth:`hhsym.model.ConductanceModel.to_dict` (structure, parameter values,
    each rate as an exact ``srepr`` and as sympy-parsable text), read back by
    :func:`load_model` into an identical model; ``rates``: per rate the chosen
    form, the expression as sympy-parsable text and LaTeX, its constants, its
    deviation from the network and the backend's Pareto front; ``provenance``:
    backend, selection rule, sampled range and step (mV), refinement losses
    (mV²), timings (s), estimator summary, hhsym version, creation time (UTC).
    Non-finite numbers are written as ``null``.

LaTeX
    :func:`latex_document` gives the model's ``align*`` block
    (:meth:`hhsym.model.ConductanceModel.latex`) or a complete article
    (``standalone=True``) that compiles with any LaTeX distribution
    (packages: amsmath only).
"""

from __future__ import annotations

import datetime
import json
import os

import sympy

from hhsym.errors import ArgumentTypeError, invalid
from hhsym.jsontypes import json_types

__all__ = [
    "FORMAT",
    "FORMS_FORMAT",
    "distillation_dict",
    "forms_latex",
    "latex_document",
    "write_json",
    "write_text",
]

FORMAT = "hhsym.distillation/1"
#: ``format`` of :meth:`hhsym.estimate.FormEstimator.to_json` files.
FORMS_FORMAT = "hhsym.forms/1"


def _candidate(c):
    return {"expression": str(c.expr), "form": c.form, "complexity": c.complexity, "loss": c.loss,
            "max_rel_error": c.max_rel_error, "bic": c.bic, "params": dict(c.params), "backend": c.backend}


def distillation_dict(dist):
    """JSON-safe dict of a Distillation (see the module docstring).

    Parameters
    ----------
    dist : Distillation

    Returns
    -------
    dict
    """
    import hhsym

    rates = {}
    for k, r in dist.rates.items():
        rates[k] = {"form": r.form, "expression": str(r.expr), "latex": sympy.latex(r.expr),
                    "constants": r.constants, "max_rel_deviation_from_network": r.max_rel_error,
                    "backend": r.fit.backend, "backend_seconds": r.fit.seconds, "notes": list(r.fit.notes),
                    "chosen_before_refinement": _candidate(r.chosen), "backend_pick": _candidate(r.fit.best),
                    "front": [_candidate(c) for c in r.fit.front],
                    "literature_candidates": [_candidate(c) for c in r.literature]}
    refinement = None
    if dist.refinement is not None:
        refinement = dict(dist.refinement)
        refinement["loss_units"] = ("mV (RMS of V_model - V_meas)" if refinement.get("loss") == "output" else
                                    "mV^2 (0.5 * sum of squared scaled residuals, as the estimator's cost_)")
    provenance = {
        "hhsym_version": getattr(hhsym, "__version__", "unknown"),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
        "backend": dist.backend, "selection": dist.selection, "v_range_mV": list(dist.v_range),
        "v_step_mV": dist.v_step, "refinement": refinement, "timings_s": dist.timings, "source": dist.source,
    }
    return json_types({"format": FORMAT, "model": dist.model.to_dict(), "rates": rates, "provenance": provenance})


def write_text(text, path):
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`hhsym.atomic.atomic_write`).

    Parameters
    ----------
    text : str
    path : str or os.PathLike
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise invalid("path", path, "a file path (str or os.PathLike)", cls=ArgumentTypeError) from None
    from hhsym.atomic import atomic_write
    from hhsym.errors import HHSymError
    from hhsym.validate import check_output_path

    check_output_path(path, "path")
    atomic_write(path, lambda f: f.write(text), error=HHSymError)


def write_json(data, path):
    """Write a JSON-safe dict to ``path`` atomically (indented, UTF-8, no NaN)."""
    write_text(json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n", path)


def _searched_on(ref):
    """`` (on the K recordings ...)`` when the forms were compared on fewer recordings than were fitted."""
    from hhsym.distill.result import compared_on

    k = compared_on(ref)
    return "" if k is None else f" (on the {k} recording(s) the forms were compared on)"


def _tex_text(text):
    """Escape LaTeX's special characters in plain text."""
    repl = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(repl.get(ch, ch) for ch in str(text))


def latex_document(dist, standalone=False):
    """LaTeX of the recovered system.

    Parameters
    ----------
    dist : Distillation
    standalone : bool
        ``False``: the ``align*`` block of :meth:`ConductanceModel.latex`
        (membrane equation, gate equations, each rate, parameter values),
        each rate typeset as :attr:`Distillation.expressions` writes it
        (``e^{-(V + 40.0)/10.0}`` rather than sympy's evaluated
        ``e^{-0.1 (V + 40.0)}``; the same function).
        ``True``: a complete ``article`` document with that block, a table of
        the chosen forms and a provenance note.

    Returns
    -------
    str
    """
    if not isinstance(standalone, bool):
        raise invalid("standalone", standalone, "True or False", cls=ArgumentTypeError)
    block = _model_block(dist.model, dist.expressions)
    if not standalone:
        return block
    import hhsym

    rows = " \\\\\n".join(
        f"  ${_rate_symbol(k)}$ & {_tex_text(r.form)} & {100 * r.max_rel_error:.2f}\\,\\%" for k, r in dist.rates.items())
    lo, hi = dist.v_range
    note = (f"Rates distilled by hhsym {_tex_text(getattr(hhsym, '__version__', ''))} with the "
            f"\\texttt{{{_tex_text(dist.backend)}}} backend from learned rate functions sampled every "
            f"{dist.v_step:g}\\,mV on ${lo:.1f} \\le V \\le {hi:.1f}$\\,mV (V in mV, rates in 1/ms, "
            "t in ms).")
    ref = dist.refinement
    if ref and ref.get("loss") == "output":
        note += (f" Forms and constants fitted by output error against {ref['n_traces']} recording(s): "
                 f"RMS of $V_\\mathrm{{model}} - V_\\mathrm{{meas}}$ {ref['rms_start']:.4g}\\,mV with the forms "
                 f"picked on the networks{_searched_on(ref)}, {ref['rms']:.4g}\\,mV refined"
                 + ("." if ref["accepted"] else " (refit not kept)."))
    elif ref:
        net = "n/a" if ref["loss_network"] is None else f"{ref['loss_network']:.4g}"
        note += (f" Constants refitted against {ref['n_traces']} recording(s) with the estimator's "
                 f"multiple-shooting loss: network {net}, distilled {ref['loss_distilled']:.4g}, "
                 f"refined {ref['loss_refined']:.4g}\\,mV$^2$"
                 + ("." if ref["accepted"] else " (refit not kept)."))
    table = ("\\begin{tabular}{lll}\n  rate & form & max.\\ deviation from network \\\\\n\\hline\n"
             f"{rows}\n\\end{{tabular}}")
    return _standalone(dist.model, block, table, note)


def _model_block(model, expressions):
    """``model.latex()`` with each rate typeset as ``expressions`` writes it (e^{-(V + 40.0)/10.0})."""
    block = model.latex()
    for key, expr in expressions.items():
        lhs = _rate_symbol(key)
        old = f"{lhs} &= {sympy.latex(model.rates[key])}"
        if block.count(old) == 1:
            block = block.replace(old, f"{lhs} &= {sympy.latex(expr)}")
    return block


def _standalone(model, block, table, note):
    """A complete ``article`` document: ``block``, a tabular ``table`` and a ``note``."""
    citation = f"\n\n{_tex_text(model.citation)}" if model.citation else ""
    return (
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
        f"\\section*{{{_tex_text(model.name)}}}\n\n{block}\n\n{table}\n\n{note}{citation}\n\\end{{document}}\n"
    )


def forms_latex(est, standalone=False):
    """LaTeX of a fitted :class:`~hhsym.estimate.form_estimator.FormEstimator` (see its ``latex``).

    Parameters
    ----------
    est : FormEstimator
        Fitted.
    standalone : bool
        ``False``: the ``align*`` block; ``True``: a complete document with a
        table of forms and constants (relative standard deviations) and a note
        on how they were fitted.

    Returns
    -------
    str
    """
    import hhsym

    block = _model_block(est.model_, est.sympy())
    if not standalone:
        return block
    sd = est.standard_errors_ or {}
    rows = []
    for k, f in est.fit_.fits.items():
        consts = ", ".join(f"${n} = {v:.4g}$" + (f" ($\\pm${100 * sd[k][n]:.1f}\\,\\%)" if k in sd and n in sd[k]
                                                 else "") for n, v in f.params().items())
        rows.append(f"  ${_rate_symbol(k)}$ & {_tex_text(f.form)} & {consts}")
    table = ("\\begin{tabular}{lll}\n  rate & form & constants (relative SD) \\\\\n\\hline\n"
             + " \\\\\n".join(rows) + "\n\\end{tabular}")
    lo, hi = est.v_range_
    start = (f"started from the rates of {_tex_text(est.model.name)}" if getattr(est, "start", "roles") == "model"
             else "gate roles and a start by the charge balance of literature forms")
    note = (f"Forms and constants fitted by hhsym {_tex_text(getattr(hhsym, '__version__', ''))} directly to the "
            f"recordings (no networks): {start}, then the output error (the model run freely over windows of up to {max(est.fit_.windows):g}\\,ms from "
            f"fitted states). RMS of $V_\\mathrm{{model}} - V_\\mathrm{{meas}}$ {est.rms_:.4g}\\,mV against "
            f"about {est.noise_:.2g}\\,mV of noise on $V$; recorded $V$ from {lo:.1f} to {hi:.1f}\\,mV. "
            "Standard deviations are Cram\\'er--Rao bounds at the fit (V in mV, rates in 1/ms, t in ms).")
    return _standalone(est.model_, block, table, note)


def _rate_symbol(key):
    kind, gate = key.split("_", 1)
    return f"\\{kind}_{{{gate}}}"
