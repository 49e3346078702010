"""Choosing a symbolic-regression backend by name."""

from __future__ import annotations

from hhsym.distill.base import Backend
from hhsym.distill.forms import FormsBackend
from hhsym.distill.operon import OperonBackend
from hhsym.distill.pysr_backend import PySRBackend, pysr_status
from hhsym.errors import ArgumentTypeError, UnknownNameError, invalid

__all__ = ["get_backend", "AutoBackend", "BACKENDS"]


class AutoBackend(Backend):
    """PySR where it can run, otherwise the forms backend with the Operon fallback.

    The choice is made at each :meth:`fit_rate` call (with
    :func:`~hhsym.distill.pysr_backend.pysr_status`, which never downloads).
    The result's ``backend`` names the backend that actually ran.
    """

    name = "auto"

    def fit_rate(self, V, r, name="rate"):
        return self.resolve().fit_rate(V, r, name)

    def resolve(self):
        """The backend :meth:`fit_rate` would use here and now."""
        ok, _ = pysr_status()
        return PySRBackend() if ok else FormsBackend(fallback="operon")

    def _fit(self, V, r, name):  # pragma: no cover - fit_rate delegates
        return self.resolve()._fit(V, r, name)


#: Backend names and their classes.
BACKENDS = {
    "forms": FormsBackend,
    "operon": OperonBackend,
    "pysr": PySRBackend,
    "auto": AutoBackend,
}


def get_backend(name="forms", **options):
    """A symbolic-regression backend by name.

    Parameters
    ----------
    name : {"forms", "operon", "pysr", "auto"}, optional
        ``"forms"`` (default): the literature's rate forms, Julia-free, with
        the Operon fallback when no form fits. ``"operon"``: open-form search
        with pyoperon. ``"pysr"``: PySR (needs Julia; raises
        :class:`~hhsym.errors.BackendUnavailableError` from ``fit_rate``
        where it cannot run). ``"auto"``: PySR where it can run, otherwise
        ``"forms"``.
    **options
        Keyword arguments of the backend's class.

    Returns
    -------
    Backend
    """
    if not isinstance(name, str):
        raise invalid("name", name, f"a backend name, one of {sorted(BACKENDS)}",
                      cls=ArgumentTypeError)
    if name not in BACKENDS:
        raise invalid("name", name, f"one of {sorted(BACKENDS)}", cls=UnknownNameError)
    try:
        return BACKENDS[name](**options)
    except TypeError as exc:
        raise invalid("options", options, f"keyword arguments of {BACKENDS[name].__name__}",
                      cls=ArgumentTypeError, hint=str(exc)) from None
