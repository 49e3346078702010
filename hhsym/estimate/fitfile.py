"""One versioned file format for fitted estimators: ``save(estimator, path)`` / ``load(path)``.

A fit file is an ``.npz`` archive written without pickles: a JSON string
``meta`` (format ``hhsym.fit/3``, the estimator's class and parameters, its
template model, its fitted attributes) and numeric arrays.  Reading never
evaluates anything: arrays with ``allow_pickle=False``, expressions by the
whitelist reader of :mod:`hhsym.expressions`, every key and type checked.

* :class:`~hhsym.estimate.RateEstimator`: arrays ``<gate>.<field>`` of each
  gate's pair of networks; files of format ``hhsym.fit/2`` (before this
  module) are still read.
* :class:`~hhsym.estimate.FormEstimator`: each rate's closed forms (family
  names and internal constants), the fitted window states, role hypotheses.
* :class:`~hhsym.estimate.CellEstimator`: the fitted model's description, its
  free parameters, training score and errors.

Both round-trip exactly: ``predict_rates`` / ``model_`` / ``summary()`` of the
loaded object equal the saved one's.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib

import numpy as np

from hhsym.atomic import atomic_write
from hhsym.errors import ArgumentTypeError, HHSymError, ModelError, TraceFileError, invalid
from hhsym.jsontypes import json_types
from hhsym.model import ConductanceModel
from hhsym.validate import check_output_path

__all__ = ["save", "load", "FORMAT", "SavedFit"]

FORMAT = "hhsym.fit/3"
_FORMAT_RATES_V2 = "hhsym.fit/2"
_NET_FIELDS = ("hidden", "norm", "theta_x", "theta_tau")


class SavedFit:
    """What every estimator shares: ``save(path)`` writes the fit file :func:`load` reads back."""

    def save(self, path):
        """Write the fitted estimator to ``path`` (``.npz``), atomically; :func:`hhsym.load` reads it back.

        Parameters
        ----------
        path : str or os.PathLike
            A ``.npz`` file name (its folder must exist).
        """
        save(self, path)


def _params(estimator):
    params = {k: v for k, v in estimator.get_params().items() if k not in ("model", "prior")}
    if not isinstance(params.get("random_state"), (int, type(None))):
        params["random_state"] = None
    return json_types(params, nonfinite="keep")


def _form_fit_state(fit):
    return {"families": [f.name for f in fit.families], "theta": [float(x) for x in fit.theta]}


def _form_fit(state, kept=None):
    """A FormFit from its saved state; ``kept`` is the template's rate for a ``fixed`` one (its expression is
    not saved: the template, saved beside it, writes it)."""
    from hhsym.estimate.rates.closed_forms import FAMILIES
    from hhsym.estimate.rates.formfit import FormFit

    names = state["families"]
    if names == ["fixed"] and kept is not None and not state["theta"]:
        return kept
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise TraceFileError(f"unknown closed-form family {unknown[0]!r}; accepted: {', '.join(FAMILIES)}")
    families = [FAMILIES[n] for n in names]
    theta = np.asarray(state["theta"], dtype=float)
    if theta.shape != (sum(f.n_params for f in families),) or not np.all(np.isfinite(theta)):
        raise TraceFileError(f"closed form {names}: expected {sum(f.n_params for f in families)} finite constants")
    return FormFit(families, theta)


# ---------------------------------------------------------------------- writing
def save(estimator, path):
    """Write a fitted estimator to ``path`` (``.npz``), atomically.

    Parameters
    ----------
    estimator : RateEstimator, FormEstimator or CellEstimator
        Fitted.
    path : str or os.PathLike
        A ``.npz`` file name in an existing, writable folder.
    """
    from hhsym.estimate.cell_estimator import CellEstimator
    from hhsym.estimate.form_estimator import FormEstimator
    from hhsym.estimate.rate_estimator import RateEstimator

    estimator._check_fitted()
    path = check_output_path(path, "path", suffixes=(".npz",))
    quality = getattr(estimator, "quality_", None)
    meta = {"format": FORMAT, "estimator": type(estimator).__name__, "params": _params(estimator),
            "model": estimator.model.to_dict(), "noise": estimator.noise_, "v_range": list(estimator.v_range_),
            "fit_time": getattr(estimator, "fit_time_", None),
            "quality": None if quality is None else quality.to_dict(),
            "membrane_area": list(getattr(estimator, "membrane_area_", None) or [])}
    arrays = {}
    if isinstance(estimator, RateEstimator):
        meta.update(names=list(estimator.gates_), roles=getattr(estimator, "roles_", None),
                    hypotheses=getattr(estimator, "hypotheses_", []), history=estimator.history_,
                    prior=None if estimator.prior is None else estimator.prior.to_dict(), cost=estimator.cost_,
                    scalars=getattr(estimator, "scalars_", {}), scalars_std=getattr(estimator, "scalars_std_", {}))
        for k, net in estimator.gates_.items():
            for field, value in net.state().items():
                arrays[f"{k}.{field}"] = value
        if getattr(estimator, "covariance_", None) is not None:
            arrays["covariance"] = np.asarray(estimator.covariance_, dtype=float)
    elif isinstance(estimator, FormEstimator):
        fit = estimator.fit_
        meta.update(
            fits={k: _form_fit_state(f) for k, f in fit.fits.items()},
            start={k: _form_fit_state(f) for k, f in fit.start.items()},
            fit={"cost": fit.cost, "n_residuals": fit.n_residuals, "n_constants": fit.n_constants,
                 "seconds": fit.seconds, "windows": list(fit.windows), "rms_initial": fit.rms_initial,
                 "stopped": fit.stopped, "scalars": fit.scalars},
            roles=estimator.roles_, role_start={k: _form_fit_state(f) for k, f in estimator.start_.items()},
            hypotheses=[{"signs": h.signs, "cost": h.cost, "costs": h.costs, "seconds": h.seconds,
                         "output_rms": h.output_rms,
                         "fits": None if h.fits is None else {k: _form_fit_state(f) for k, f in h.fits.items()}}
                        for h in estimator.hypotheses_],
            trials=estimator.trials_, search_accepted=estimator.search_accepted_, misfit=estimator.misfit_,
            standard_errors=estimator.standard_errors_, timings=estimator.timings_)
        arrays["fit.states"] = np.asarray(fit.states, dtype=float)
    elif isinstance(estimator, CellEstimator):
        meta.update(fitted_model=estimator.model_.to_dict(), fitted_params=estimator.params_,
                    score=estimator.score_, start_score=estimator.start_score_, errors=estimator.errors_,
                    generations=estimator.generations_, evaluations=estimator.evaluations_,
                    bridge_edges=getattr(estimator, "bridge_edges_", None), observation=estimator.observation_)
    else:
        raise invalid("estimator", estimator, "a fitted RateEstimator, FormEstimator or CellEstimator",
                      cls=ArgumentTypeError)
    arrays["meta"] = np.array(json.dumps(json_types(meta, nonfinite="keep")))
    atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)


# ---------------------------------------------------------------------- reading
_COMMON = {"format", "estimator", "params", "model", "noise", "v_range", "fit_time", "quality", "membrane_area"}
_KEYS = {
    "RateEstimator": _COMMON | {"names", "roles", "hypotheses", "history", "prior", "cost", "scalars", "scalars_std"},
    "FormEstimator": _COMMON | {"fits", "start", "fit", "roles", "role_start", "hypotheses", "trials", "search_accepted",
                                "misfit", "standard_errors", "timings"},
    "CellEstimator": _COMMON | {"fitted_model", "fitted_params", "score", "start_score", "errors", "generations",
                                "evaluations", "bridge_edges", "observation"},
}
_V2_KEYS = {"format", "model", "names", "roles", "hypotheses", "v_range", "history", "params", "prior",
            "cost", "fit_time", "noise", "quality"}


def load(path):
    """Read a fitted estimator written by ``save`` (exact round trip).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file written by :meth:`RateEstimator.save` or :meth:`FormEstimator.save`.

    Returns
    -------
    RateEstimator or FormEstimator
        Fitted.

    Raises
    ------
    TraceFileError
        If the file is missing, damaged (truncated, bad CRC, not a zip) or not
        a hhsym fit, or its metadata hold unknown keys or wrong types.
    ModelError
        If a model description inside cannot be read.
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise invalid("path", path, "a file path (str or os.PathLike)", cls=ArgumentTypeError) from None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if not isinstance(meta, dict):
                raise TraceFileError(f"{path}: not a hhsym fit file (its metadata are not an object)")
            fmt = meta.get("format")
            if fmt == _FORMAT_RATES_V2:
                meta["estimator"], keys = "RateEstimator", _V2_KEYS | {"estimator"}
            elif fmt == FORMAT and meta.get("estimator") in _KEYS:
                keys = _KEYS[meta["estimator"]]
            else:
                raise TraceFileError(f"{path}: not a hhsym fit file (format {fmt!r:.60}, estimator "
                                     f"{meta.get('estimator')!r:.40}; expected {FORMAT!r})")
            _check_meta(path, meta, keys)
            if meta["estimator"] == "RateEstimator":
                arrays = [{f: z[f"{k}.{f}"] for f in _NET_FIELDS} for k in meta["names"]]
                covariance = np.array(z["covariance"], dtype=float) if "covariance" in z.files else None
            elif meta["estimator"] == "FormEstimator":
                arrays = z["fit.states"]
    except (TraceFileError, ModelError):
        raise
    except FileNotFoundError:
        raise invalid("path", path, "an existing fit file written by 'hhsym fit' or an estimator's save",
                      cls=TraceFileError) from None
    except (OSError, EOFError, KeyError, ValueError, TypeError, zipfile.BadZipFile, zlib.error) as exc:
        raise TraceFileError(f"cannot read fit file {path!r}: damaged or not a hhsym fit "
                             f"({type(exc).__name__}: {str(exc)[:120]})") from None
    try:
        if meta["estimator"] == "RateEstimator":
            est = _rate_estimator(meta, arrays, covariance)
        elif meta["estimator"] == "CellEstimator":
            est = _cell_estimator(meta)
        else:
            est = _form_estimator(meta, arrays)
    except ModelError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise TraceFileError(f"cannot read fit file {path!r}: damaged fitted state "
                             f"({type(exc).__name__}: {str(exc)[:120]})") from None
    except TraceFileError as exc:
        raise TraceFileError(f"cannot read fit file {path!r}: {exc}") from None
    return est


def _check_meta(path, meta, keys):
    """Raise a TraceFileError unless a fit file's metadata have the known keys and types."""
    unknown = sorted(set(meta) - keys)
    if unknown:
        raise TraceFileError(f"{path}: unknown metadata key(s) {', '.join(map(repr, unknown))}; "
                             f"accepted: {', '.join(sorted(keys))}")
    missing = sorted(k for k in keys - set(meta) if k not in ("quality", "noise", "fit_time", "estimator",
                                                              "membrane_area", "bridge_edges", "observation",
                                                              "scalars", "scalars_std"))
    if missing:
        raise TraceFileError(f"{path}: metadata lack the key(s) {', '.join(map(repr, missing))}")
    types = {"model": dict, "v_range": list, "params": dict, "names": list, "history": list, "fits": dict,
             "fit": dict, "hypotheses": list, "membrane_area": list}
    for key, kind in types.items():
        if key == "membrane_area" and key not in meta:  # files written before it was recorded
            continue
        if key in keys and not isinstance(meta.get(key), kind):
            raise TraceFileError(f"{path}: metadata {key!r} must be a {kind.__name__}, got {meta.get(key)!r:.60}")
    if len(meta["v_range"]) != 2 or "names" in keys and not all(isinstance(n, str) for n in meta["names"]):
        raise TraceFileError(f"{path}: metadata 'names' must be gate names and 'v_range' two numbers")
    from hhsym.estimate.cell_estimator import CellEstimator
    from hhsym.estimate.form_estimator import FormEstimator
    from hhsym.estimate.rate_estimator import RateEstimator

    cls = {"RateEstimator": RateEstimator, "CellEstimator": CellEstimator}.get(meta["estimator"], FormEstimator)
    accepted = set(cls().get_params()) - {"model", "prior"}
    unknown = sorted(set(meta["params"]) - accepted)
    if unknown:
        raise TraceFileError(f"{path}: unknown estimator parameter(s) {', '.join(map(repr, unknown))}; "
                             f"accepted: {', '.join(sorted(accepted))}")
    for key in ("cost", "fit_time", "noise"):
        if meta.get(key) is not None and (isinstance(meta[key], bool) or not isinstance(meta[key], (int, float))):
            raise TraceFileError(f"{path}: metadata {key!r} must be a number, got {meta[key]!r:.60}")


def _build(cls, meta, **extra):
    """The estimator with the saved parameters, validated like ``fit`` does."""
    params = dict(meta["params"])
    for key in ("hidden", "max_iter", "spline_knots"):
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    est = cls(model=ConductanceModel.from_dict(meta["model"]), **extra, **params)
    try:
        est._check_params()
    except HHSymError as exc:
        raise TraceFileError(f"its parameters are invalid ({exc})") from None
    est.noise_ = meta.get("noise")
    est.v_range_ = tuple(float(v) for v in meta["v_range"])
    est.fit_time_ = meta.get("fit_time")
    areas = meta.get("membrane_area") or []
    if not all(isinstance(a, dict) and isinstance(a.get("area_cm2"), (int, float)) and a["area_cm2"] > 0
               for a in areas):
        raise TraceFileError(f"metadata 'membrane_area' must be a list of {{'area_cm2': > 0, ...}}, got {areas!r:.80}")
    est.membrane_area_ = [dict(a) for a in areas]
    if meta.get("quality") is not None:
        from hhsym.estimate.quality import FitQuality

        est.quality_ = FitQuality.from_dict(meta["quality"])
    return est


def _rate_estimator(meta, arrays, covariance=None):
    from hhsym.estimate.rate_estimator import RateEstimator
    from hhsym.estimate.rates.network import GateNetworks

    prior = None if meta["prior"] is None else ConductanceModel.from_dict(meta["prior"])
    est = _build(RateEstimator, meta, prior=prior)
    est.scalars_, est.scalars_std_ = _scalar_values(meta, "scalars"), _scalar_values(meta, "scalars_std")
    unknown = sorted(set(est.scalars_) - set(est.model.params))
    if unknown:
        raise TraceFileError(f"its fitted scalars {unknown} are not parameters of its model")
    nets = [GateNetworks.from_state(state) for state in arrays]
    est._set_fitted(meta["names"], nets, est.v_range_, meta["history"])
    est.roles_ = meta.get("roles")
    est.hypotheses_ = meta.get("hypotheses", [])
    est.cost_ = meta["cost"]
    n = sum(2 * g.xnet.n_params for g in nets)
    if covariance is not None and covariance.shape != (n, n):
        raise TraceFileError(f"its covariance is {covariance.shape}, expected ({n}, {n}) for its networks")
    est.covariance_ = covariance
    return est


def _scalar_values(meta, key):
    """A dict of scalar name -> finite number from ``meta[key]`` (absent in files written before it: {})."""
    values = meta.get(key) or {}
    if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, (int, float))
                                               and not isinstance(v, bool) and np.isfinite(v)
                                               for k, v in values.items()):
        raise TraceFileError(f"metadata {key!r} must map scalar names to finite numbers, got {values!r:.80}")
    return {k: float(v) for k, v in values.items()}


def _cell_estimator(meta):
    from hhsym.estimate.cell_estimator import CellEstimator

    est = _build(CellEstimator, meta)
    model = ConductanceModel.from_dict(meta["fitted_model"])
    params, errors = meta["fitted_params"], meta["errors"]
    if not (isinstance(params, dict) and all(isinstance(v, (int, float)) for v in params.values())):
        raise TraceFileError(f"metadata 'fitted_params' must map names to numbers, got {params!r:.80}")
    if not (isinstance(errors, list) and all(isinstance(e, dict) for e in errors)):
        raise TraceFileError(f"metadata 'errors' must be a list of objects, got {errors!r:.80}")
    observation = meta.get("observation", params)  # files written before: fitted values among the parameters
    if not (isinstance(observation, dict) and all(isinstance(v, (int, float)) for v in observation.values())):
        raise TraceFileError(f"metadata 'observation' must map names to numbers, got {observation!r:.80}")
    est._set_fitted(model, params, meta["score"], meta["start_score"], errors, meta["generations"],
                    meta["evaluations"], observation)
    edges = meta.get("bridge_edges")  # absent in files written before it was recorded
    if not (edges is None or isinstance(edges, (int, float))):
        raise TraceFileError(f"metadata 'bridge_edges' must be a number or null, got {edges!r:.60}")
    est.bridge_edges_ = None if edges is None else float(edges)
    return est


def _form_estimator(meta, states):
    from hhsym.estimate.form_estimator import FormEstimator
    from hhsym.estimate.losses.output_error import OutputErrorFit
    from hhsym.estimate.search.roles import RoleHypothesis

    est = _build(FormEstimator, meta)
    kept = {}
    if est.fixed:
        from hhsym.estimate.losses.output_error import kept_forms

        kept = kept_forms(est.model, est.fixed)
    f = meta["fit"]
    fit = OutputErrorFit({k: _form_fit(s, kept.get(k)) for k, s in meta["fits"].items()}, math_inf(f["cost"]),
                         f["n_residuals"], f["n_constants"], np.asarray(states, dtype=float), f["seconds"],
                         windows=f["windows"], rms_initial=math_inf(f["rms_initial"]),
                         start={k: _form_fit(s, kept.get(k)) for k, s in meta["start"].items()})
    fit.stopped = f["stopped"]
    fit.scalars = dict(f.get("scalars") or {})  # absent in files written before scalars were fitted
    hypotheses = []
    for h in meta["hypotheses"]:
        fits = None if h["fits"] is None else {k: _form_fit(s) for k, s in h["fits"].items()}
        hyp = RoleHypothesis(h["signs"], math_inf(h["cost"]), fits, [math_inf(c) for c in h["costs"]], h["seconds"])
        hyp.output_rms = h["output_rms"]
        hypotheses.append(hyp)
    est.start_ = {k: _form_fit(s, kept.get(k)) for k, s in meta["role_start"].items()}
    est._set_fitted(fit, meta["roles"], hypotheses, meta["trials"], meta["search_accepted"], meta["misfit"],
                    meta["standard_errors"], meta["timings"])
    return est


def math_inf(value):
    """A saved float (None stands for a non-finite value, read back as inf)."""
    return float("inf") if value is None else float(value)
