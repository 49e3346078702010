"""Which channels does this cell need?  Candidate templates fitted on training sweeps, compared on held-out ones.

A template is written ``BASE+CHANNEL+...``: a library model (``hh``, ``pospischil_rs``, or
``rs`` for short) and channels from :mod:`hhsym.channels` added to it — ``m`` (M-current,
Kv7), ``ih`` (HCN), ``a`` (A-type K+), ``nap`` (persistent Na+), ``cal`` (L-type Ca2+) —
e.g. ``"hh+m"``, ``"rs+ih+nap"``.  Each is fitted by :class:`~hhsym.estimate.CellEstimator`
(whole-cell scalars and each channel's kinetics free) to the training sweeps and validated on
the held-out sweeps (:func:`hhsym.validate_fit`); the comparison ranks them by the held-out
score

.. math::

    s = \\Big(\\frac{e_n}{0.15}\\Big)^2 + \\Big(\\frac{\\Delta t^{(1)}}{3\\,\\mathrm{ms}}\\Big)^2
        + \\Big(\\frac{\\Delta P}{5\\,\\mathrm{mV}}\\Big)^2 + \\Big(\\frac{\\mathrm{RMS}}{2\\,\\mathrm{mV}}\\Big)^2

(the pooled spike-count error, the median first-spike latency and AP-peak errors, the median
subthreshold RMS: issue 17's targets, each 1 at its tolerance; a missing term counts
:data:`MISSING`).
"""

from __future__ import annotations

import time
import warnings

from hhsym.errors import invalid

__all__ = ["template", "compare_templates", "TemplateComparison", "CHANNELS", "BASES", "DEFAULT_TEMPLATES"]

#: Channel keys of a template spec -> (function name in :mod:`hhsym.channels`, keyword overrides).
CHANNELS = {"m": ("m_current", {"g": 0.05}), "ih": ("ih_kole", {"g": 0.02}), "a": ("a_connor_stevens", {"g": 5.0}),
            "nap": ("nap_magistretti", {"g": 0.02}), "cal": ("l_calcium", {"g": 0.05})}
#: Base names of a template spec -> library model name.
BASES = {"hh": "hh", "rs": "pospischil_rs", "pospischil_rs": "pospischil_rs"}
#: What :func:`compare_templates` compares by default.
DEFAULT_TEMPLATES = ("hh", "hh+m", "rs", "rs+ih")
#: Held-out score term of a figure that cannot be computed (no spikes on one side, every sweep diverged).
MISSING = 25.0


def template(spec):
    """The model a template spec names (``"hh+m"``, ``"rs+ih+nap"``, ...).

    Parameters
    ----------
    spec : str or ConductanceModel
        ``BASE[+CHANNEL...]`` (module docstring), or a model (returned as it is).

    Returns
    -------
    ConductanceModel
        The base model with the channels added (leak kept last), named after ``spec``.
    """
    from hhsym import channels
    from hhsym.library import get_model
    from hhsym.model import ConductanceModel

    if isinstance(spec, ConductanceModel):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise invalid("template", spec, "a spec BASE+CHANNEL+... (bases: " + ", ".join(BASES) + "; channels: "
                      + ", ".join(CHANNELS) + ") or a ConductanceModel")
    base, *extra = [p.strip().lower() for p in spec.split("+")]
    if base not in BASES:
        raise invalid("template", spec, "a base among " + ", ".join(BASES))
    model = get_model(BASES[base])
    if not extra:
        return model
    added = []
    for i, key in enumerate(extra):
        if key not in CHANNELS or key in extra[:i]:
            raise invalid("template", spec, "distinct channels among " + ", ".join(CHANNELS))
        name, kw = CHANNELS[key]
        ch = getattr(channels, name)(**kw)
        if ch.name in [c.name for c in model.channels]:
            raise invalid("template", spec, f"channels not already in {model.name} ({ch.name} is)")
        added.append(ch)
    leak = [c for c in model.channels if not c.gates]
    gated = [c for c in model.channels if c.gates]
    return ConductanceModel(gated + added + leak, C_m=model.params["C_m"], name=spec, citation=model.citation)


def held_out_score(summary):
    """The held-out score (module docstring) of a validation summary (:func:`validation_metrics.summarise`)."""
    err = summary.get("median_abs_error") or {}
    terms = [summary.get("spike_count_error"), err.get("first_spike_latency_ms"), err.get("AP_peak_mV"),
             summary.get("median_subthreshold_rms_mV")]
    if summary.get("n_spikes_recorded", 0) == 0:  # no spikes recorded: only the counts and the RMS speak
        terms[1] = terms[2] = 0.0
        terms[0] = summary.get("mean_abs_spike_count_error")
    scales = (0.15, 3.0, 5.0, 2.0)
    return float(sum(MISSING if t is None else min(MISSING, (t / s) ** 2) for t, s in zip(terms, scales)))


class TemplateComparison:
    """Result of :func:`compare_templates`.

    Attributes
    ----------
    rows : list of dict
        Per template, best held-out score first: ``template``, ``n_free``, ``train_score``,
        ``held_out_score``, ``summary`` (the held-out validation summary), ``fit_s``,
        ``estimator`` (the fitted CellEstimator; None if the fit failed), ``error``.
    best : dict
        The first row.
    """

    def __init__(self, rows):
        self.rows = sorted(rows, key=lambda r: r["held_out_score"])
        self.best = self.rows[0]

    def table(self):
        """str: one line per template, best first."""
        head = (f"{'template':18s} {'free':>4s} {'train':>8s} {'held-out':>9s} {'spikes rec/mod':>15s} "
                f"{'count err':>9s} {'latency':>8s} {'peak':>6s} {'sub RMS':>8s} {'fit s':>6s}")
        lines = [head]
        for r in self.rows:
            s = r["summary"] or {}
            e = s.get("median_abs_error") or {}

            def f(v, fmt):
                return "-" if v is None else format(v, fmt)

            spikes = f"{s.get('n_spikes_recorded', '-')}/{s.get('n_spikes_model', '-')}"
            lines.append(f"{r['template']:18s} {r['n_free']:4d} {f(r['train_score'], '8.3g')} "
                         f"{r['held_out_score']:9.3g} {spikes:>15s} {f(s.get('spike_count_error'), '9.2f')} "
                         f"{f(e.get('first_spike_latency_ms'), '8.1f')} {f(e.get('AP_peak_mV'), '6.1f')} "
                         f"{f(s.get('median_subthreshold_rms_mV'), '8.2f')} {r['fit_s']:6.0f}"
                         + (f"  failed: {r['error']}" if r["error"] else ""))
        return "\n".join(lines)

    def to_dict(self):
        """dict: JSON-ready rows (without the estimators)."""
        from hhsym.jsontypes import json_types

        return json_types({"format": "hhsym.templates/1",
                           "rows": [{k: v for k, v in r.items() if k != "estimator"} for r in self.rows]})

    def write_json(self, path):
        """Write :meth:`to_dict` to ``path`` (``.json``) atomically.

        Parameters
        ----------
        path : str or os.PathLike
        """
        from hhsym.export.document import write_json

        write_json(self.to_dict(), path)


def compare_templates(recording, train, held_out, templates=DEFAULT_TEMPLATES, *, area=None, time_limit=240.0,
                      random_state=0, log=None):
    """Fit each candidate template to the training sweeps and rank them on the held-out sweeps.

    Parameters
    ----------
    recording : str, os.PathLike or Recording
        A lab file (ABF, NWB, Igor glob) or a read :class:`~hhsym.io.Recording`.
    train, held_out : str or sequence of int
        Sweep numbers as the file numbers them (``"181,184"``); disjoint.
    templates : sequence of str or ConductanceModel
        Specs (:func:`template`) or models; default :data:`DEFAULT_TEMPLATES`.
    area : float, optional
        Membrane area (cm²); default estimated from all of the file's sweeps.
    time_limit : float
        Soft budget (s) of each template's fit.
    random_state : int
    log : callable, optional
        Called with one line per template.

    Returns
    -------
    TemplateComparison
    """
    import os

    from hhsym.analysis.validation import validate_fit
    from hhsym.errors import HHSymError, PoorFitWarning
    from hhsym.estimate.cell_estimator import CellEstimator
    from hhsym.io.cli import parse_sweeps
    from hhsym.io.reader import read

    rec = read(recording) if isinstance(recording, (str, os.PathLike)) else recording
    train, held_out = parse_sweeps(train), parse_sweeps(held_out)
    for name, sweeps in (("train", train), ("held_out", held_out)):
        missing = [s for s in (sweeps or ()) if s not in rec.sweep_numbers]
        if not sweeps or missing:
            raise invalid(name, sweeps, f"sweep numbers of the recording ({', '.join(map(str, rec.sweep_numbers))})")
    if set(train) & set(held_out):
        raise invalid("held_out", held_out, f"sweeps not among the training ones ({train})")
    models = [(spec if isinstance(spec, str) else spec.name, template(spec)) for spec in templates]
    traces = rec.to_traces(area_cm2=area)
    area_used = traces.meta["membrane_area"]["area_cm2"]
    fit_on = [traces[k] for k, s in enumerate(rec.sweep_numbers) if s in train]
    rows = []
    for name, model in models:
        t0 = time.perf_counter()
        row = {"template": name, "n_free": 0, "train_score": None, "held_out_score": 4 * MISSING, "summary": None,
               "estimator": None, "error": None}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PoorFitWarning)
                est = CellEstimator(model, time_limit=time_limit, random_state=random_state).fit(fit_on)
            result = validate_fit(est, rec, list(held_out), area=area_used)
            row.update(n_free=len(est.params_), train_score=est.score_, summary=result.summary, estimator=est,
                       held_out_score=held_out_score(result.summary))
        except HHSymError as exc:
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        row["fit_s"] = time.perf_counter() - t0
        rows.append(row)
        if log is not None:
            log(f"{name}: held-out score {row['held_out_score']:.3g} ({row['fit_s']:.0f} s)"
                + (f", failed: {row['error']}" if row["error"] else ""))
    return TemplateComparison(rows)
