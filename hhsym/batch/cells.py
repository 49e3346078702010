"""The cells of a folder: one recording file, or one Igor prefix with its voltage and current waves."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["Cell", "find_cells"]

#: The Igor channel tag; ``_Ch3_`` marks the voltage waves (BluePyEfe's layout, as :func:`hhsym.io.read`).
_IGOR_TAG = re.compile(r"_Ch(\d+)_")


@dataclass(frozen=True)
class Cell:
    """One cell of a folder: what one ``hhsym fit`` reads.

    Attributes
    ----------
    name : str
        File name without extension; for Igor waves the prefix before ``_Ch3_``.  Two cells
        with the same name get the extension appended (``cell_0_csv``, ``cell_0_npz``).
    path : str
        The file, or for Igor waves the glob of the cell's voltage waves.
    files : tuple of str
        The folder's files that belong to the cell (Igor: voltage and current waves).
    """

    name: str
    path: str
    files: tuple


def find_cells(directory):
    """The cells of a folder (its files only, not its sub-folders), sorted by name.

    Parameters
    ----------
    directory : str or os.PathLike
        A folder of recordings: ``.csv``/``.npz`` (hhsym traces), ``.abf``, ``.nwb``, ``.ibw``.
        Hidden files and files of other types are ignored.

    Returns
    -------
    list of Cell
        Empty if the folder holds no recordings.
    """
    import glob

    from hhsym.io.reader import FORMATS

    directory = os.fspath(directory)
    names = sorted(e for e in os.listdir(directory)
                   if not e.startswith(".") and os.path.isfile(os.path.join(directory, e))
                   and os.path.splitext(e)[1].lower() in FORMATS)
    igor = {}  # prefix -> [files]
    cells = []
    for name in names:
        stem, ext = os.path.splitext(name)
        tag = _IGOR_TAG.search(name) if ext.lower() == ".ibw" else None
        if tag is None:
            cells.append([stem, ext.lower().lstrip("."), os.path.join(directory, name), (name,)])
        else:
            igor.setdefault(name[:tag.start()], []).append(name)
    for prefix, files in igor.items():
        if any(_IGOR_TAG.search(f).group(1) == "3" for f in files):  # else current waves without voltage
            pattern = os.path.join(glob.escape(directory), glob.escape(prefix) + "_Ch3_*.ibw")
            cells.append([prefix, "ibw", pattern, tuple(files)])
    taken = {}
    for cell in cells:
        taken[cell[0]] = taken.get(cell[0], 0) + 1
    out = [Cell(stem if taken[stem] == 1 else f"{stem}_{ext}", path, files) for stem, ext, path, files in cells]
    return sorted(out, key=lambda c: c.name)
