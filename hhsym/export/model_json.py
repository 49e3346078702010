"""Models as JSON-safe dicts (format ``hhsym.model/1``): structure, values, rates as exact srepr text.

Rates are stored as :func:`sympy.srepr` text (exact round trip, numbers kept
as written) and, for people, as plain text (``alpha_text``).  Reading goes
through the whitelist reader :func:`hhsym.expressions.parse_srepr`: nothing in
a model file is ever evaluated, and every key is checked.
"""

from __future__ import annotations

import json
import os

import sympy

from hhsym.errors import ArgumentTypeError, InvalidArgumentError, ModelError, invalid

__all__ = ["model_to_dict", "model_from_dict", "load_model", "FORMAT"]

FORMAT = "hhsym.model/1"
_MODEL_KEYS = {"format", "name", "citation", "C_m", "params", "channels", "pools"}
_POOL_KEYS = {"name", "channels", "tau", "depth", "Ca_inf"}


def model_to_dict(model):
    """JSON-safe description of ``model`` (see :meth:`hhsym.ConductanceModel.to_dict`).

    Parameters
    ----------
    model : ConductanceModel

    Returns
    -------
    dict
    """
    rates = model.rates
    out = {
        "format": FORMAT,
        "name": model.name,
        "citation": model.citation,
        "C_m": model.params["C_m"],
        "params": model.rate_params,
        "channels": [
            {
                "name": ch.name,
                "g": ch.g,
                "E": ch.E,
                "gates": [
                    {
                        "name": g.name,
                        "power": g.power,
                        "alpha": sympy.srepr(rates[f"alpha_{g.name}"]),
                        "beta": sympy.srepr(rates[f"beta_{g.name}"]),
                        "alpha_text": str(rates[f"alpha_{g.name}"]),
                        "beta_text": str(rates[f"beta_{g.name}"]),
                    }
                    for g in ch.gates
                ],
            }
            for ch in model.channels
        ],
    }
    if model.pools:  # written only when present: files of pool-free models stay as they were
        out["pools"] = [
            {"name": pool.name, "channels": list(pool.channels), "tau": pool.tau, "depth": pool.depth,
             "Ca_inf": pool.Ca_inf}
            for pool in model.pools
        ]
    return out


def model_from_dict(data):
    """Rebuild a model from :func:`model_to_dict` output (exact round trip; nothing is evaluated).

    Parameters
    ----------
    data : dict

    Returns
    -------
    ConductanceModel

    Raises
    ------
    ModelError
        On a wrong format, unknown or missing keys, wrong types, or a rate the
        whitelist reader refuses.
    """
    from hhsym.model import CalciumPool, Channel, ConductanceModel, Gate

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise invalid("data", data, f"a dict written by ConductanceModel.to_dict (format {FORMAT!r})",
                      cls=ModelError)
    unknown = sorted(set(data) - _MODEL_KEYS)
    if unknown:
        raise ModelError(
            f"model description has unknown key(s) {', '.join(map(repr, unknown))}: "
            f"accepted keys are {', '.join(sorted(_MODEL_KEYS))}"
        )
    params = data.get("params") or {}
    if not isinstance(params, dict) or not isinstance(data.get("channels"), list):
        raise ModelError("model description: 'params' must be an object and 'channels' a list")
    pools = data.get("pools") or []
    if not isinstance(pools, list) or not all(isinstance(p, dict) for p in pools):
        raise ModelError("model description: 'pools' must be a list of objects")
    for pool in pools:
        wrong = sorted(set(pool) ^ _POOL_KEYS)
        if wrong:
            raise ModelError(f"model description: calcium pool {pool.get('name')!r} has unknown or missing "
                             f"key(s) {', '.join(map(repr, wrong))}: expected {', '.join(sorted(_POOL_KEYS))}")
    pool_names = tuple(str(p["name"]) for p in pools)
    try:
        channels = [
            Channel(
                ch["name"],
                ch["g"],
                ch["E"],
                [
                    Gate(g["name"], _rate(g, "alpha", params, pool_names), _rate(g, "beta", params, pool_names),
                         g["power"])
                    for g in ch["gates"]
                ],
            )
            for ch in data["channels"]
        ]
        pools = [CalciumPool(p["name"], tuple(p["channels"]), p["tau"], p["depth"], p["Ca_inf"]) for p in pools]
        return ConductanceModel(channels, data["C_m"], data.get("params"), data.get("name", "model"),
                                data.get("citation"), pools)
    except KeyError as exc:
        raise ModelError(f"model description lacks the key {exc.args[0]!r}") from None
    except (TypeError, AttributeError) as exc:
        raise ModelError(f"model description is malformed: {exc}") from None


def _rate(gate, kind, params, pools=()):
    """Rebuild a rate from its srepr text in a model description, never evaluating it."""
    from hhsym.symbolic import sympify_exact

    if not isinstance(gate, dict):
        raise ModelError(f"model description: a gate must be an object, got {gate!r:.80}")
    return sympify_exact(gate[kind], tuple(params) + tuple(pools), where=f"{kind}_{gate.get('name')}")


def load_model(path):
    """Rebuild the ConductanceModel stored in a distillation (or model) JSON file.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :meth:`Distillation.to_json` (or a JSON file holding
        :meth:`ConductanceModel.to_dict`).

    Returns
    -------
    ConductanceModel
        Identical (``==``, same rates and parameters) to the model written.

    Raises
    ------
    InvalidArgumentError
        If the file does not exist or is not JSON.
    ModelError
        If it holds no hhsym model description.
    """
    from hhsym.export.document import FORMAT as DISTILLATION, FORMS_FORMAT
    from hhsym.model import ConductanceModel

    try:
        p = os.fspath(path)
    except TypeError:
        raise invalid("path", path, "a file path (str or os.PathLike)", cls=ArgumentTypeError) from None
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise invalid("path", p, "an existing JSON file written by Distillation.to_json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(f"cannot read model file {p!r}: {exc}") from None
    if isinstance(data, dict) and data.get("format") in (DISTILLATION, FORMS_FORMAT):
        data = data.get("model")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{p}: no hhsym model description "
                         f"(expected format {DISTILLATION!r}, {FORMS_FORMAT!r} or {FORMAT!r})")
    return ConductanceModel.from_dict(data)
