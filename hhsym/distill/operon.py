"""Open-form symbolic regression with Operon (``pyoperon``), Julia-free.

Used on its own (``get_backend("operon")``) or as the fallback of the forms
backend when no literature form explains a rate. The search is seeded,
single-threaded and bounded (generations and evaluations; a wall-clock cap
only as a safety net), over the symbols add, sub, mul, div, exp, constant and
variable, with NSGA-II on (R², length) so that Operon returns a Pareto front.

Operon minimises absolute error, while rates span decades; so by default it
runs twice: on the rate and on its logarithm (the model then being
``exp(f(V))``). Every expression of both fronts is read into sympy (Operon's
variable ``X1`` becomes ``V``), its constants are re-fitted to relative
residuals (:func:`hhsym.distill.parsing.refine_constants`) and rounded to six
significant digits.
"""

from __future__ import annotations

import numpy as np
import sympy

from hhsym.distill.base import Backend, candidate_from_expr
from hhsym.distill.parsing import parse_expression, refine_constants, round_constants
from hhsym.errors import ArgumentTypeError, BackendUnavailableError, ModelError, invalid

__all__ = ["OperonBackend"]

_SYMBOLS = "add,sub,mul,div,exp,constant,variable"
_TARGETS = ("rate", "log")


class OperonBackend(Backend):
    """Genetic-programming symbolic regression with Operon.

    Parameters
    ----------
    max_length : int, optional
        Largest expression length (nodes) Operon may build (default 20).
    population_size : int, optional
        Individuals per generation (default 250).
    generations : int, optional
        Generations per run (default 50).
    max_evaluations : int, optional
        Evaluation budget per run (default 50000).
    n_refine : int, optional
        How many of the most accurate expressions get their constants
        re-fitted to relative residuals (default 6; the others keep Operon's).
    max_time : int, optional
        Safety cap on each run's wall-clock time (s, default 30). Runs are
        reproducible only while they stop before it.
    random_state : int, optional
        Seed (default 0).
    targets : tuple of {"rate", "log"}, optional
        What Operon fits: the rate itself and/or its logarithm (default both).
    """

    name = "operon"

    def __init__(
        self,
        max_length=20,
        population_size=250,
        generations=50,
        max_evaluations=50_000,
        n_refine=6,
        max_time=30,
        random_state=0,
        targets=_TARGETS,
    ):
        self.max_length = max_length
        self.population_size = population_size
        self.generations = generations
        self.max_evaluations = max_evaluations
        self.max_time = max_time
        self.random_state = random_state
        self.targets = targets
        self.n_refine = n_refine

    def __repr__(self):
        return (
            f"OperonBackend(max_length={self.max_length!r}, generations={self.generations!r}, "
            f"random_state={self.random_state!r}, targets={self.targets!r})"
        )

    def _check_params(self):
        for arg in ("max_length", "population_size", "generations", "max_evaluations",
                    "max_time", "n_refine"):
            value = getattr(self, arg)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise invalid(arg, value, "a positive int")
        if self.max_length < 3:
            raise invalid("max_length", self.max_length, "an int >= 3")
        if not isinstance(self.random_state, (int, np.integer)):
            raise invalid("random_state", self.random_state, "an int seed",
                          cls=ArgumentTypeError)
        targets = tuple(self.targets) if isinstance(self.targets, (list, tuple)) else None
        if not targets or any(t not in _TARGETS for t in targets):
            raise invalid("targets", self.targets, f"a non-empty tuple of {_TARGETS}")

    def _regressor(self):
        try:
            from pyoperon.sklearn import SymbolicRegressor
        except ImportError as exc:  # pragma: no cover - pyoperon is a dependency
            raise BackendUnavailableError(
                f"the operon backend needs the pyoperon package ({exc}); "
                "install it with `pip install pyoperon`"
            ) from None
        return SymbolicRegressor(
            allowed_symbols=_SYMBOLS,
            max_length=self.max_length,
            max_depth=max(4, self.max_length // 2),
            initialization_max_length=min(10, self.max_length),
            population_size=self.population_size,
            generations=self.generations,
            max_evaluations=self.max_evaluations,
            max_time=self.max_time,
            optimizer_iterations=10,
            objectives=["r2", "length"],
            random_state=int(self.random_state),
            n_threads=1,
        )

    def model_strings(self, V, y):
        """Run Operon on ``y(V)`` and return its Pareto front as infix strings.

        Parameters
        ----------
        V, y : ndarray
            Voltages (mV) and target values.

        Returns
        -------
        list of str
            Model strings in Operon's syntax (variable ``X1``), constants
            printed with 12 decimals.
        """
        reg = self._regressor()  # raises BackendUnavailableError without pyoperon
        import pyoperon

        reg.fit(V[:, None], y)
        return [
            pyoperon.InfixFormatter.Format(p["tree"], reg.variables_, 12)
            for p in reg.pareto_front_
        ]

    def _fit(self, V, r, name):
        self._check_params()
        notes, parsed = [], {}
        for target in tuple(self.targets):
            y = r if target == "rate" else np.log(r)
            for text in self.model_strings(V, y):
                try:
                    expr = parse_expression(text, variables=("X1",))
                except ModelError as exc:
                    notes.append(f"skipped an operon model: {exc}")
                    continue
                expr = sympy.exp(expr) if target == "log" else expr
                cand = candidate_from_expr(expr, V, r, form="operon", params={}, backend="")
                if cand is not None and expr not in parsed:
                    parsed[expr] = cand.loss
        candidates, seen = [], set()
        for i, expr in enumerate(sorted(parsed, key=parsed.get)):
            if i < self.n_refine:
                expr = refine_constants(expr, V, r)
            expr = round_constants(expr)
            if expr in seen:
                continue
            seen.add(expr)
            cand = candidate_from_expr(
                expr, V, r, form="operon", params=_constants(expr), backend=self.name
            )
            if cand is not None:
                candidates.append(cand)
        return candidates, notes


def _constants(expr):
    """The float constants of ``expr`` as ``{"c0": ..., "c1": ...}`` (tree order)."""
    floats = [a for a in sympy.preorder_traversal(expr) if isinstance(a, sympy.Float)]
    return {f"c{i}": float(f) for i, f in enumerate(floats)}
