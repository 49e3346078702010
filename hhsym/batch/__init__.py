"""Fit every cell of a folder on a Dask distributed cluster (``hhsym fit-many``).

A *cell* is one recording file of the folder (hhsym CSV/NPZ, ABF, NWB), named by its file name
without the extension; Igor waves are grouped by cell prefix: ``B6_Ch3_IDRest_181.ibw`` ...
``B6_Ch3_IDRest_185.ibw`` (the voltage waves, ``_Ch3_``) with their ``_Ch0_`` current partners
are the one cell ``B6``.  Each cell is fitted by :func:`hhsym.estimate.files.fit_files`, exactly
as ``hhsym fit`` fits it, in one Dask task; a failing cell never stops the others.

Results, in the folder ``out``, each written atomically:

* ``<cell>.npz`` — the fit (:func:`hhsym.load`), also for a poor fit;
* ``<cell>.status.json`` — its row of the summary (status, time, verdict or error);
* ``summary.json`` — every cell's row, written at the end of a run.

A cell whose ``<cell>.npz`` exists is skipped, so an interrupted run resumes where it stopped;
failed cells (no ``.npz``) are tried again.  Dask is imported only here (``pip install
"hhsym[dask]"``); ``import hhsym`` does not load it.
"""

from __future__ import annotations

from hhsym.batch.cells import Cell, find_cells
from hhsym.batch.run import fit_many
from hhsym.batch.summary import STATUSES, FitManySummary

__all__ = ["fit_many", "find_cells", "Cell", "FitManySummary", "STATUSES"]
