"""A Dask client on a new LocalCluster or an existing scheduler (Dask is imported only here)."""

from __future__ import annotations

import os
import time

from hhsym.errors import BackendUnavailableError

__all__ = []

_CONNECT_TIMEOUT = 10.0  # s, to reach an existing scheduler


def one_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Cluster:
    """A Dask client on a new LocalCluster or an existing scheduler; closed on exit."""

    def __init__(self, workers, scheduler, n_tasks):
        self.workers, self.scheduler, self.n_tasks = workers, scheduler, n_tasks
        self.cluster = self.client = None

    def __enter__(self):
        try:
            import logging

            from distributed import Client, LocalCluster
        except ImportError:
            raise BackendUnavailableError('fit_many needs Dask distributed: pip install "hhsym[dask]" '
                                          '(or "dask[distributed]")') from None
        try:
            if self.scheduler is not None:
                try:
                    self.client = Client(self.scheduler, timeout=_CONNECT_TIMEOUT)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise BackendUnavailableError(
                        f"scheduler={self.scheduler!r}: no Dask scheduler answered within "
                        f"{_CONNECT_TIMEOUT:g} s ({one_line(exc)}); give the address a running "
                        "'dask scheduler' prints (tcp://HOST:PORT)") from None
            else:
                n = self.workers or max(1, min(_cores(), self.n_tasks))
                env = {} if "NUMBA_NUM_THREADS" in os.environ else \
                    {"NUMBA_NUM_THREADS": str(max(1, _cores() // n))}
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                            dashboard_address=":0", silence_logs=logging.ERROR, env=env)
                self.client = Client(self.cluster)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def dashboard(self):
        """The dashboard's link, or None if the scheduler serves none (bokeh missing)."""
        try:
            if "dashboard" in self.client.scheduler_info().get("services", {}):
                return self.client.dashboard_link
        except Exception:  # noqa: BLE001 - only informative
            pass
        return None

    def __exit__(self, *exc):
        if self.cluster is not None and self.client is not None:
            try:  # workers first: a worker outliving the scheduler logs a heartbeat error
                self.cluster.scale(0)
                deadline = time.monotonic() + 10.0
                while self.client.scheduler_info().get("workers") and time.monotonic() < deadline:
                    time.sleep(0.05)
            except Exception:  # noqa: BLE001 - closing what may already be gone
                pass
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing what may already be gone
                    pass
        return False
