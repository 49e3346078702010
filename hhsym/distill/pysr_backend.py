"""Adapter for PySR (``PySRRegressor``), which runs on a Julia runtime.

``pysr`` is imported lazily, inside :meth:`PySRBackend.fit_rate`, and only
after :func:`julia_status` has found a Julia executable *without downloading
anything*: ``PYTHON_JULIAPKG_OFFLINE=yes`` is set (unless the user set it)
so that juliapkg never fetches Julia or packages. When PySR or Julia is
missing, :class:`~hhsym.errors.BackendUnavailableError` says so and how to
get them; the Julia-free ``forms`` backend is always available.

The search uses operators + - * / and exp, forbids exp inside exp
(``nested_constraints={"exp": {"exp": 0}}``), weights samples by
:math:`1/r_k^2` so that PySR's weighted L2 loss is the mean squared relative
error, and runs deterministically (``deterministic=True``,
``parallelism="serial"``, ``random_state``).

:func:`candidates_from_equations` turns PySR's equations table, either
``PySRRegressor.equations_`` or the ``hall_of_fame.csv`` PySR writes
(header ``Complexity,Loss,Equation``; the equation column is quoted but not
escaped), into :class:`~hhsym.distill.base.Candidate` objects.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import sympy

from hhsym.distill.base import V as V_SYM
from hhsym.distill.base import (
    Backend,
    Candidate,
    candidate_from_expr,
    check_samples,
    expression_complexity,
)
from hhsym.distill.parsing import parse_expression, round_constants
from hhsym.errors import ArgumentTypeError, BackendUnavailableError, ModelError, invalid

__all__ = [
    "PySRBackend",
    "candidates_from_equations",
    "read_hall_of_fame",
    "julia_status",
    "pysr_status",
    "INSTALL_HINT",
]

#: How to make the PySR backend available.
INSTALL_HINT = (
    "PySR needs a Julia runtime. On a machine with network access run "
    "`pip install hhsym[pysr]` and `python -c \"import pysr\"` once (this downloads "
    "Julia and PySR's Julia packages), or point juliapkg at an existing Julia "
    "install with PYTHON_JULIAPKG_EXE=/path/to/julia (or put `julia` on PATH) "
    "with SymbolicRegression.jl already installed. Without Julia use the "
    "Julia-free backend: get_backend('forms')"
)

#: Names a PySR equation may use for the voltage.
VARIABLE_NAMES = ("V", "x0")


def _juliapkg_project():
    """Where juliapkg keeps its Julia project (mirrors juliapkg's own rule)."""
    project = os.environ.get("PYTHON_JULIAPKG_PROJECT")
    if project:
        return project
    depot = os.environ.get("JULIA_DEPOT_PATH", "").split(os.pathsep)[0] or os.path.join(
        os.path.expanduser("~"), ".julia"
    )
    prefix = sys.prefix if sys.prefix != sys.base_prefix else os.environ.get("CONDA_PREFIX")
    if prefix:
        return os.path.join(prefix, "julia_env")
    return os.path.join(depot, "environments", "pyjuliapkg")


def _candidate_julias():
    """Julia executables that exist here, in the order juliapkg would look."""
    exe = ".exe" if os.name == "nt" else ""
    found = []
    override = os.environ.get("PYTHON_JULIAPKG_EXE")
    if override:
        found.append(("PYTHON_JULIAPKG_EXE", override))
    project = _juliapkg_project()
    found.append(("juliapkg", os.path.join(project, "pyjuliapkg", "install", "bin", "julia" + exe)))
    meta = os.path.join(project, "pyjuliapkg", "meta.json")
    try:
        with open(meta, encoding="utf-8") as fh:
            recorded = json.load(fh).get("executable")
        if recorded:
            found.append(("juliapkg meta.json", recorded))
    except (OSError, ValueError, AttributeError):
        pass
    depot = os.environ.get("JULIA_DEPOT_PATH", "").split(os.pathsep)[0] or os.path.join(
        os.path.expanduser("~"), ".julia"
    )
    for path in sorted(glob.glob(os.path.join(depot, "juliaup", "*", "bin", "julia" + exe))):
        found.append(("juliaup", path))
    on_path = shutil.which("julia")
    if on_path:
        found.append(("PATH", on_path))
    return found


def julia_status():
    """Find a Julia executable without downloading anything.

    Returns
    -------
    str or None
        Path of a Julia executable, or ``None`` if there is none.
    """
    for _, path in _candidate_julias():
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def pysr_status():
    """Whether the PySR backend can run here, without importing ``pysr``.

    Returns
    -------
    (bool, str)
        ``(True, path_of_julia)`` or ``(False, reason)``.
    """
    import importlib.util

    if importlib.util.find_spec("pysr") is None:
        return False, "the pysr package is not installed"
    julia = julia_status()
    if julia is None:
        return False, "no Julia executable was found (PySR would try to download one)"
    return True, julia


def _import_pysr():
    ok, detail = pysr_status()
    if not ok:
        raise BackendUnavailableError(f"the pysr backend cannot run: {detail}. {INSTALL_HINT}")
    os.environ.setdefault("PYTHON_JULIAPKG_OFFLINE", "yes")
    os.environ.setdefault("PYTHON_JULIAPKG_EXE", detail)
    try:
        import pysr
    except Exception as exc:  # juliapkg/juliacall raise plain Exceptions
        raise BackendUnavailableError(
            f"the pysr backend cannot run: importing pysr with Julia at {detail} failed "
            f"({type(exc).__name__}: {exc}). {INSTALL_HINT}"
        ) from exc
    return pysr


class PySRBackend(Backend):
    """Symbolic regression with PySR (needs a Julia runtime).

    Parameters
    ----------
    niterations : int, optional
        PySR iterations (default 40).
    maxsize : int, optional
        Largest expression complexity (default 20).
    populations : int, optional
        Number of populations (default 8).
    population_size : int, optional
        Individuals per population (default 33).
    random_state : int, optional
        Seed (default 0); the search is deterministic and serial.
    timeout_in_seconds : float or None, optional
        Optional wall-clock limit (s) of the search.
    options : dict or None, optional
        Further ``PySRRegressor`` keyword arguments; they override the above.
    """

    name = "pysr"

    def __init__(self, niterations=40, maxsize=20, populations=8, population_size=33,
                 random_state=0, timeout_in_seconds=None, options=None):
        self.niterations = niterations
        self.maxsize = maxsize
        self.populations = populations
        self.population_size = population_size
        self.random_state = random_state
        self.timeout_in_seconds = timeout_in_seconds
        self.options = options

    def __repr__(self):
        return (
            f"PySRBackend(niterations={self.niterations!r}, maxsize={self.maxsize!r}, "
            f"random_state={self.random_state!r})"
        )

    def regressor_options(self):
        """The keyword arguments given to ``pysr.PySRRegressor``."""
        if self.options is not None and not isinstance(self.options, dict):
            raise invalid("options", self.options, "a dict of PySRRegressor arguments or None",
                          cls=ArgumentTypeError)
        for arg in ("niterations", "maxsize", "populations", "population_size"):
            value = getattr(self, arg)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise invalid(arg, value, "a positive int")
        opts = dict(
            binary_operators=["+", "-", "*", "/"],
            unary_operators=["exp"],
            nested_constraints={"exp": {"exp": 0}},
            maxsize=int(self.maxsize),
            niterations=int(self.niterations),
            populations=int(self.populations),
            population_size=int(self.population_size),
            parallelism="serial",
            deterministic=True,
            random_state=int(self.random_state),
            model_selection="best",
            precision=64,
            progress=False,
            verbosity=0,
            temp_equation_file=True,
        )
        if self.timeout_in_seconds is not None:
            opts["timeout_in_seconds"] = float(self.timeout_in_seconds)
        opts.update(self.options or {})
        return opts

    def _fit(self, V, r, name):
        opts = self.regressor_options()
        pysr = _import_pysr()
        model = pysr.PySRRegressor(**opts)
        # weights 1/r^2 turn PySR's weighted L2 loss into the relative error
        model.fit(V[:, None], r, weights=1.0 / r**2, variable_names=["V"])
        candidates = candidates_from_equations(model.equations_, V, r)
        return candidates, []


def read_hall_of_fame(path):
    """Read a PySR ``hall_of_fame.csv`` as a list of row dicts.

    The file has the header ``Complexity,Loss,Equation`` and one row per
    equation, ``complexity,loss,"equation"``, where the equation is quoted
    but its contents are not escaped; so (as PySR itself does) everything
    after the second comma is the equation. Julia float syntax is accepted.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.

    Returns
    -------
    list of dict
        Keys ``complexity`` (int), ``loss`` (float), ``equation`` (str).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise invalid("table", str(path), "a readable PySR hall-of-fame CSV file",
                      hint=str(exc)) from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines or [h.strip().lower() for h in lines[0].split(",")[:3]] != [
        "complexity", "loss", "equation"
    ]:
        raise invalid("table", str(path), "a CSV whose header is Complexity,Loss,Equation")
    rows = []
    for ln in lines[1:]:
        try:
            c, loss, eq = ln.split(",", 2)
            rows.append({
                "complexity": int(c),
                "loss": float(loss.replace("f", "e").replace("F", "e")),
                "equation": eq.strip().removeprefix('"').removesuffix('"'),
            })
        except ValueError:
            raise invalid("table", str(path), "rows of the form complexity,loss,\"equation\"",
                          hint=f"bad row {ln!r}") from None
    return rows


def _rows(table):
    if isinstance(table, (str, os.PathLike)):
        return read_hall_of_fame(table)
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # pandas DataFrame
        records = table.to_dict("records")
    elif isinstance(table, (list, tuple)):
        records = list(table)
    else:
        raise invalid(
            "table", table,
            "a PySR equations table: a DataFrame (PySRRegressor.equations_), a list "
            "of row dicts, or the path of a hall_of_fame.csv", cls=ArgumentTypeError,
        )
    rows = []
    for rec in records:
        lower = {str(k).lower(): v for k, v in dict(rec).items()}
        if "equation" not in lower and "sympy_format" not in lower:
            raise invalid("table", table, "rows with an 'equation' (or 'sympy_format') column")
        rows.append(lower)
    return rows


def _to_sympy(row):
    eq = row.get("sympy_format")
    if isinstance(eq, sympy.Expr):
        names = {s: V_SYM for s in eq.free_symbols if s.name in VARIABLE_NAMES}
        expr = eq.xreplace(names)
        if expr.free_symbols - {V_SYM}:
            raise ModelError(f"invalid equation {eq}: it uses symbols other than V")
        return expr
    return parse_expression(str(row["equation"]), variables=VARIABLE_NAMES)


def candidates_from_equations(table, V=None, r=None):
    """Turn PySR's equations table into candidates.

    Parameters
    ----------
    table : pandas.DataFrame, list of dict, str or os.PathLike
        ``PySRRegressor.equations_`` (columns ``complexity, loss, equation``
        and optionally ``sympy_format``), rows with those keys in any case,
        or the path of a ``hall_of_fame.csv`` in PySR's on-disk format
        (header ``Complexity,Loss,Equation``).
    V, r : array_like, optional
        Samples (mV, 1/ms). When given, every candidate's loss, largest
        relative error and BIC are measured on them; without them ``loss`` is
        PySR's own loss column and ``max_rel_error`` is ``None``.

    Returns
    -------
    list of Candidate
        One per row that parses to a finite expression in V (``form="pysr"``),
        in table order, constants rounded to six significant digits (rows
        that then coincide are kept once), complexity recounted with
        :func:`~hhsym.distill.base.expression_complexity` so it compares with
        other backends.

    Raises
    ------
    ModelError
        If an equation uses anything but numbers, + - * / ^, the functions of
        :data:`hhsym.distill.parsing.FUNCTIONS` and the variable ``V``/``x0``.
    """
    rows = _rows(table)
    if (V is None) != (r is None):
        raise invalid("r" if r is None else "V", None, "both V and r, or neither")
    if V is not None:
        V, r = check_samples(V, r)
    out, seen = [], set()
    for row in rows:
        expr = round_constants(_to_sympy(row))
        if expr in seen:  # rows that agree to six significant digits
            continue
        seen.add(expr)
        params = {f"c{i}": float(f) for i, f in enumerate(
            a for a in sympy.preorder_traversal(expr) if isinstance(a, sympy.Float))}
        if V is not None:
            cand = candidate_from_expr(expr, V, r, form="pysr", params=params, backend="pysr")
            if cand is not None:
                out.append(cand)
            continue
        loss = float(row.get("loss", np.nan))
        if not np.isfinite(loss):
            continue
        out.append(Candidate(
            expr=expr, complexity=expression_complexity(expr), loss=loss,
            max_rel_error=None, form="pysr", params=params, backend="pysr",
        ))
    return out
