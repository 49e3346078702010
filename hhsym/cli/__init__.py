"""The ``hhsym`` command line.  It calls the public API only.

Exit codes:

* 0 — success;
* 1 — failure (unreadable file, diverging model, ...; ``fit-many``: a cell failed), with a
  one-line reason (the traceback only with ``--debug``);
* 2 — usage error: a bad option value or an output path that cannot be
  written, reported before any work starts;
* 3 — poor fit: ``fit``, ``forms`` or ``fit-many`` finished and wrote its result, but the
  fitted model does not reproduce the training recordings (the reason is
  printed; ``--accept-poor-fit`` turns this into 0);
* 130 / 143 — interrupted (Ctrl-C / SIGTERM); no half-written file is left.
"""

from __future__ import annotations

import signal
import sys

from hhsym.cli.commands import EXIT_POOR_FIT, UsageError, parse_stimulus
from hhsym.cli.parser import _parser
from hhsym.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["main", "parse_stimulus", "EXIT_POOR_FIT"]


def main(argv=None):
    """Run the command line; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on failure, 2 on a usage error.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    previous = _on_signals()
    try:
        return args.func(args)
    except (UsageError, InvalidArgumentError, ArgumentTypeError) as exc:
        if args.debug:
            raise
        parser.print_usage(sys.stderr)
        print(f"hhsym {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hhsym: interrupted", file=sys.stderr)
        return 130
    except _Terminated as exc:
        print(f"hhsym: terminated by signal {exc.args[0]}", file=sys.stderr)
        return 128 + exc.args[0]
    except Exception as exc:  # one-line reason unless --debug
        if args.debug:
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"hhsym {args.command}: {type(exc).__name__}: {reason}", file=sys.stderr)
        return 1
    finally:
        _restore_signals(previous)


class _Terminated(BaseException):
    """SIGTERM/SIGHUP turned into an exception, so that every cleanup (temporary files) runs."""


def _raise_terminated(signum, frame):
    raise _Terminated(signum)


def _on_signals():
    """Route SIGTERM and SIGHUP through :class:`_Terminated` (main thread only); the previous handlers."""
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, _raise_terminated)
        except ValueError:  # not the main thread
            pass
    return previous


def _restore_signals(previous):
    for sig, handler in previous.items():
        signal.signal(sig, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
