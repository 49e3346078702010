"""Progress bars for long work (tqdm), shown on standard error when ``verbose == 1``.

``verbose`` throughout hhsym: 0 silent; 1 one line per stage and a progress
bar for each long loop (it disappears when the loop ends); 2 also one line per
iteration.
"""

from __future__ import annotations

import sys

__all__ = ["progress_bar"]


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, text, refresh=True):
        pass

    def close(self):
        pass


def progress_bar(total, desc, verbose=1):
    """A progress bar of ``total`` steps labelled ``desc`` (a no-op object unless ``verbose == 1``).

    Parameters
    ----------
    total : int
        Number of steps (an upper bound: the loop may stop early).
    desc : str
        Label shown before the bar.
    verbose : int, optional
        Only 1 shows a bar (0 is silent; 2 prints lines instead).

    Returns
    -------
    object
        With ``update(n)``, ``set_postfix_str(text)`` and ``close()``.
    """
    if verbose != 1:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return _NoBar()
    return tqdm(total=total, desc=f"[hhsym] {desc}", leave=False, file=sys.stderr, mininterval=0.5,
                dynamic_ncols=True)
