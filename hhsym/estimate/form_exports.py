"""What a fitted :class:`~hhsym.estimate.FormEstimator` gives back: sympy, LaTeX, JSON and a summary.

:class:`FormExports` is the estimator's base for these; it reads only the
fitted attributes (``fit_``, ``model_``, ``roles_``, ``rms_``, ...), so a fit
read back by :func:`hhsym.load` exports exactly as the saved one.
"""

from __future__ import annotations

import datetime

import sympy

from hhsym.errors import ArgumentTypeError, NotFittedError, invalid
from hhsym.jsontypes import json_types
from hhsym.estimate.losses.output_error import WINDOWS

__all__ = ["FormExports", "METHODS"]

#: How each ``start`` of the estimator reached its fit, as the exports state it.
METHODS = {
    "roles": "FormEstimator: charge-balance role search, output-error form search and fit",
    "model": "FormEstimator(start='model'): the template's own rates as the start, output-error form search and fit",
}


class FormExports:
    """Exports of a fitted :class:`~hhsym.estimate.FormEstimator` (mixed into it)."""

    def _check_fitted(self):
        if not hasattr(self, "fit_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(traces) first")

    def sympy(self):
        """dict: rate name -> sympy expression in V (mV), 1/ms, written in the families' layout."""
        self._check_fitted()
        return {k: f.expr() for k, f in self.fit_.fits.items()}

    def latex(self, standalone=False):
        """The fitted system in LaTeX.

        Parameters
        ----------
        standalone : bool
            ``False``: an ``align*`` block to paste (membrane and gate
            equations, each rate, parameter values); ``True``: a complete
            ``article`` document adding a table of forms and constants with
            their standard deviations, and how they were fitted.

        Returns
        -------
        str
        """
        from hhsym.export.document import forms_latex

        self._check_fitted()
        if not isinstance(standalone, bool):
            raise invalid("standalone", standalone, "True or False", cls=ArgumentTypeError)
        return forms_latex(self, standalone)

    def to_dict(self):
        """JSON-safe description: the model (``hhsym.model/1``), each rate's form, constants and
        standard deviations, and provenance (fit settings, RMS, noise, role costs, timings)."""
        import hhsym
        from hhsym.export.document import FORMS_FORMAT

        self._check_fitted()
        sd = self.standard_errors_ or {}
        rates = {k: {"form": f.form, "expression": str(f.expr()), "latex": sympy.latex(f.expr()),
                     "constants": f.params(), "relative_sd": sd.get(k)} for k, f in self.fit_.fits.items()}
        provenance = {
            "hhsym_version": getattr(hhsym, "__version__", "unknown"),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
            "method": METHODS[self.start],
            "settings": {k: v for k, v in self.get_params().items() if k not in ("model", "random_state")},
            "windows_ms": list(self.fit_.windows or WINDOWS), "rms_mV": self.rms_, "noise_mV": self.noise_,
            "misfit": self.misfit_, "continuation_stopped": self.fit_.stopped,
            "v_range_mV": list(self.v_range_), "roles": self.roles_,
            "role_costs_mV2": {h.label: h.cost for h in self.hypotheses_},
            "role_output_rms_mV": {h.label: h.output_rms for h in self.hypotheses_ if h.output_rms is not None},
            "form_trials": self.trials_, "form_search_kept": self.search_accepted_, "timings_s": self.timings_,
        }
        return json_types({"format": FORMS_FORMAT, "model": self.model_.to_dict(), "rates": rates,
                       "provenance": provenance})

    def to_json(self, path):
        """Write :meth:`to_dict` to ``path`` atomically; :func:`hhsym.distill.load_model` reads the model back.

        Parameters
        ----------
        path : str or os.PathLike
        """
        from hhsym.export.document import write_json

        write_json(self.to_dict(), path)

    def summary(self):
        """str: roles, one line per rate (form, expression, relative SDs) and the fit's RMS against the noise."""
        self._check_fitted()
        sd = self.standard_errors_ or {}
        how = "its own rates refitted to the recordings" if self.start == "model" else "closed forms fitted to the recordings"
        lines = [f"{self.model.name}: {how} (roles "
                 + ", ".join(f"{g} {'activating' if s > 0 else 'inactivating'}" for g, s in self.roles_.items())
                 + ")"]
        for k, f in self.fit_.fits.items():
            err = ", ".join(f"{n} ±{v:.1%}" for n, v in (sd.get(k) or {}).items())
            lines.append(f"  {k:10s} {f.form:12s} {f.expr()}" + (f"   ({err})" if err else ""))
        scalars = getattr(self, "scalars_", {})
        if scalars:
            lines.append("  fitted scalars: " + ", ".join(
                f"{n} {v:.5g} (template {self.model.params[n]:.5g})" for n, v in scalars.items()))
        lines.append(f"  output error: rms {self.rms_:.4g} mV against ~{self.noise_:.2g} mV of noise on V"
                     + (f" — {self.misfit_}" if self.misfit_ else ""))
        lines.append(f"  time: {self.fit_time_:.1f} s")
        return "\n".join(lines)
