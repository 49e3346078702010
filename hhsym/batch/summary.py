"""The summary of a ``fit-many`` run: one row per cell, as a table and as ``summary.json``."""

from __future__ import annotations

import os

__all__ = ["FitManySummary", "STATUSES"]

#: Status of a cell in a run: fitted and good, fitted but poor, failed (no result), result already there.
STATUSES = ("ok", "poor", "failed", "skipped")

SUMMARY = "summary.json"


class FitManySummary:
    """What :func:`fit_many` did: one row (dict) per cell.

    Attributes
    ----------
    cells : list of dict
        Per cell, in name order: ``cell``, ``status`` (one of :data:`STATUSES`), ``files``,
        ``result`` (the ``.npz``, or None), ``time_s`` (wall time of the fit, s), ``n_traces``,
        ``loss_mV2``, ``v_range_mV``, ``quality`` (:meth:`FitQuality.to_dict`: ``verdict``,
        ``reason``, ``rms_mV``, ...), ``warnings``, ``error`` (failed: ``"Type: message"``);
        a skipped cell also ``previous``: its status when it was fitted (``ok``, ``poor``).
    directory, out : str
        The recordings' folder and the results' folder.
    summary_path : str
        ``out/summary.json``.
    scheduler, dashboard : str or None
        The Dask scheduler's address and dashboard link (None when nothing was left to fit,
        or for a dashboard when the scheduler has none).
    """

    def __init__(self, cells, directory, out, scheduler=None, dashboard=None):
        self.cells = list(cells)
        self.directory = directory
        self.out = out
        self.summary_path = os.path.join(out, SUMMARY)
        self.scheduler = scheduler
        self.dashboard = dashboard

    def __len__(self):
        return len(self.cells)

    def __iter__(self):
        return iter(self.cells)

    def __getitem__(self, name):
        """The row of the cell called ``name``."""
        for row in self.cells:
            if row["cell"] == name:
                return row
        raise KeyError(name)

    def counts(self):
        """dict: number of cells per status of this run (``ok``, ``poor``, ``failed``, ``skipped``)."""
        out = {}
        for row in self.cells:
            out[row["status"]] = out.get(row["status"], 0) + 1
        return out

    def outcomes(self):
        """dict: number of cells per outcome, a skipped cell counted as its ``previous`` status."""
        out = {}
        for row in self.cells:
            key = (row.get("previous") or "unknown") if row["status"] == "skipped" else row["status"]
            out[key] = out.get(key, 0) + 1
        return out

    def to_dict(self):
        """dict: JSON-safe, what ``summary.json`` holds."""
        from hhsym.jsontypes import json_types

        return json_types({"directory": self.directory, "out": self.out, "scheduler": self.scheduler,
                           "dashboard": self.dashboard, "counts": self.counts(), "cells": self.cells})

    def table(self):
        """str: a plain-text table, one line per cell, and a line of counts."""
        head = ("cell", "status", "time s", "traces", "RMS mV", "note")
        rows = []
        for r in self.cells:
            q = r.get("quality") or {}
            if r["status"] == "skipped":
                note = f"result already there ({r.get('previous') or 'status unknown'})"
            elif r["status"] == "failed":
                note = r.get("error") or ""
            else:
                note = q.get("reason") or ""
            rms = q.get("rms_mV")
            rows.append((r["cell"], r["status"],
                         "-" if r.get("time_s") is None else f"{r['time_s']:.1f}",
                         "-" if r.get("n_traces") is None else str(r["n_traces"]),
                         "-" if rms is None else f"{rms:.3g}", _shorten(note, 90)))
        widths = [max(len(str(x[k])) for x in [head, *rows]) for k in range(5)]
        lines = ["  ".join(str(x[k]).ljust(widths[k]) if k in (0, 1) else str(x[k]).rjust(widths[k])
                           for k in range(5)) + "  " + x[5] for x in [head, *rows]]
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        where = f" (Dask scheduler {self.scheduler})" if self.scheduler else ""
        lines.append(f"{len(self.cells)} cell(s): {counts} -> {self.out}{where}")
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"FitManySummary({len(self.cells)} cells: {self.counts()}, out={self.out!r})"


def _shorten(text, n):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."
