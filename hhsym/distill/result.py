"""Result types of :func:`hhsym.distill.distill`: :class:`Distillation` and :class:`RateResult`."""

from __future__ import annotations

__all__ = ["Distillation", "RateResult", "refinement_line"]


def compared_on(ref):
    """How many recordings an output-error refinement compared forms on, when fewer than it fitted, else None."""
    searched = ref.get("searched")
    return None if searched is None or len(searched) == ref.get("n_traces") else len(searched)


def refinement_line(ref):
    """One line on a :attr:`Distillation.refinement` (its loss before and after)."""
    if ref.get("loss") == "output":
        k = compared_on(ref)
        part = "" if k is None else f" on the {k} of {ref.get('n_traces')} recordings the forms were compared on"
        return ("output error (rms of V_model - V_meas, mV): forms from the networks {:.4g}{}, refined {:.4g} "
                "({} constants){}".format(ref["rms_start"], part, ref["rms"], ref["n_constants"],
                                          "" if ref["accepted"] else " (not kept)"))
    return "loss (mV^2): network {}, distilled {:.4g}, refined {:.4g}{}".format(
        "n/a" if ref["loss_network"] is None else f"{ref['loss_network']:.4g}",
        ref["loss_distilled"], ref["loss_refined"], "" if ref["accepted"] else " (not kept)")


class RateResult:
    """Distillation of one rate function.

    Attributes
    ----------
    name : str
        ``alpha_m``, ...
    fit : RateFit
        The backend's result (Pareto front, its BIC pick, timing, notes).
    chosen : Candidate
        The candidate picked by the selection rule (before refinement).
    expr : sympy.Expr
        Final expression in V (mV), 1/ms (refined constants if refined).
    constants : dict
        Final constants by public name (A, c in 1/ms; B, k in mV; open forms
        ``c0, c1, ...``).
    max_rel_error : float
        Largest relative deviation of ``expr`` from the network on the
        sampled range (dimensionless).
    literature : list of Candidate
        Literature forms refitted without the open-form fallback because the
        backend's open forms dominated them off its front (empty otherwise).
    """

    def __init__(self, name, fit, chosen, expr, constants, max_rel_error, literature=()):
        self.name, self.fit, self.chosen, self.expr = name, fit, chosen, expr
        self.constants, self.max_rel_error = dict(constants), float(max_rel_error)
        self.literature = list(literature)

    @property
    def form(self):
        """str: the chosen family (``linoid``, ``sum(a,b)``, ``operon``, ...)."""
        return self.chosen.form

    def __repr__(self):
        return f"RateResult({self.name}: {self.form} {self.expr}; max rel. dev. {self.max_rel_error:.3g})"


class Distillation:
    """Closed-form rates distilled from a fitted estimator (returned by :func:`distill`).

    Attributes
    ----------
    model : ConductanceModel
        The estimator's template with the closed-form rates; simulatable.
    rates : dict
        Rate name -> :class:`RateResult`.
    v_range : (float, float)
        Voltage range (mV) the networks were sampled on.
    v_step : float
        Sampling step (mV).
    backend : str
        Backend requested; each ``rates[k].fit.backend`` says which ran.
    selection : dict
        ``{"rule", "tolerance"}``.
    refinement : dict or None
        ``loss_network`` (the estimator's cost of its networks, mV², no
        ridge), ``loss_distilled`` (same loss, closed forms as distilled),
        ``loss_refined`` (after refitting), ``accepted``, ``iterations``,
        ``seconds``, ``loss="shooting"``; with the output-error loss
        (``loss="output"``) instead ``rms_start`` and ``rms`` (mV, of
        V_model - V_meas before, on the recordings the forms were compared on,
        and after, on all), ``searched`` (those recordings' indices), ``bic``,
        ``n_constants`` and the form-search ``trials``; ``None`` when not refined.
    timings : dict
        Wall times (s): ``sampling``, ``backend`` (per rate), ``refine``, ``total``.
    parametric_model : ConductanceModel
        The same model with every rate constant a named model parameter
        (``alpha_m__kk``, ...; see :mod:`hhsym.estimate.refine`), to vary
        constants per trace in :func:`hhsym.simulate.simulate`.
    """

    def __init__(self, model, rates, v_range, v_step, backend, selection, refinement, timings, source):
        self.model, self.rates = model, rates
        self.v_range, self.v_step = tuple(float(v) for v in v_range), float(v_step)
        self.backend, self.selection = backend, dict(selection)
        self.refinement, self.timings, self.source = refinement, timings, dict(source)
        self.parametric_model = None

    @property
    def expressions(self):
        """dict: rate name -> sympy expression in V (mV), 1/ms.

        Written in the families' layout (``exp(-(V + 40.0)/10.0)``); the same
        functions as ``model.rates``, which sympy holds evaluated
        (``exp(-0.1*(V + 40.0))``).
        """
        return {k: r.expr for k, r in self.rates.items()}

    @property
    def fronts(self):
        """dict: rate name -> Pareto front (list of Candidate, by complexity)."""
        return {k: list(r.fit.front) for k, r in self.rates.items()}

    @property
    def forms(self):
        """dict: rate name -> chosen form."""
        return {k: r.form for k, r in self.rates.items()}

    @property
    def constants(self):
        """dict: rate name -> final constants (see :attr:`RateResult.constants`)."""
        return {k: dict(r.constants) for k, r in self.rates.items()}

    def sympy(self):
        """dict: rate name -> sympy expression in V (mV), 1/ms (a copy of :attr:`expressions`)."""
        return self.expressions

    def latex(self, standalone=False):
        """The recovered system in LaTeX (see :func:`hhsym.export.document.latex_document`).

        Parameters
        ----------
        standalone : bool
            ``False``: an ``align*`` block to paste; ``True``: a complete,
            compilable document (article class, amsmath).

        Returns
        -------
        str
        """
        from hhsym.export.document import latex_document

        return latex_document(self, standalone=standalone)

    def to_dict(self):
        """JSON-safe description: model, rates with fronts, provenance."""
        from hhsym.export.document import distillation_dict

        return distillation_dict(self)

    def to_json(self, path):
        """Write :meth:`to_dict` to ``path`` atomically (temporary file + ``os.replace``).

        Parameters
        ----------
        path : str or os.PathLike
            Read back with :func:`hhsym.distill.load_model`.
        """
        from hhsym.export.document import write_json

        write_json(self.to_dict(), path)

    def summary(self):
        """str: one line per rate (form, expression, deviation) and the losses."""
        lines = [f"{self.model.name}: rates distilled on [{self.v_range[0]:.1f}, {self.v_range[1]:.1f}] mV"]
        for k, r in self.rates.items():
            lines.append(f"  {k:10s} {r.form:22s} {r.expr}   (max dev. from network {r.max_rel_error:.2%})")
        if self.refinement:
            lines.append("  " + refinement_line(self.refinement))
        lines.append(f"  time: {self.timings['total']:.1f} s")
        return "\n".join(lines)

    def __repr__(self):
        return f"Distillation({self.model.name!r}: {', '.join(f'{k}={v}' for k, v in self.forms.items())})"
