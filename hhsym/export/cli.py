"""The ``hhsym export`` subcommand: write a model for NEURON, Brian2 and NeuroML 2.

``hhsym.cli`` plugs it in with :func:`add_parser` (which sets ``func`` to
:func:`run`); usage errors raise :class:`~hhsym.errors.InvalidArgumentError`
(built with :func:`hhsym.errors.invalid`), which the command line reports with
exit code 2.
"""

from __future__ import annotations

import argparse

from hhsym.errors import invalid

__all__ = ["add_parser", "run"]

EPILOG = """examples:
  hhsym export model.json --nmodl neuron/ --brian2 model_brian2.py --neuroml model.nml
  hhsym export --model hh --param g_Na=100 --nmodl hh_neuron/
then:
  python neuron/run_neuron.py stim.csv out.csv      # STIM.csv header t,I (ms, uA/cm2); OUT t,V (ms, mV)
  python model_brian2.py stim.csv out.csv
  pynml model.nml -validate; pynml LEMS_model.xml   # add --stimulus stim.csv to inject it there
"""


def add_parser(subparsers):
    """Add the ``export`` subcommand to an argparse subparsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser (its default ``func`` is :func:`run`).
    """
    exp = subparsers.add_parser(
        "export", help="write a model for NEURON (NMODL), Brian2 and NeuroML 2",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    exp.add_argument("model_json", nargs="?", metavar="MODEL.json",
                     help="a model written by 'hhsym distill --json' or 'hhsym forms --json'")
    exp.add_argument("--model", help="a library model instead of MODEL.json (e.g. hh)")
    exp.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a parameter")
    exp.add_argument("--nmodl", metavar="DIR", help="write one .mod per channel and run_neuron.py here")
    exp.add_argument("--brian2", metavar="FILE.py", help="write a Brian2 script here")
    exp.add_argument("--neuroml", metavar="FILE.nml", help="write NeuroML 2 (and LEMS_FILE.xml beside it)")
    exp.add_argument("--stimulus", metavar="STIM.csv",
                     help="current (header t,I; ms, uA/cm2) the LEMS simulation injects (default: none, 100 ms)")
    exp.set_defaults(func=run)
    return exp


def _parameters(items):
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise invalid("--param", item, "NAME=VALUE, e.g. g_Na=100")
        try:
            out[name] = float(value)
        except ValueError:
            raise invalid("--param", item, "NAME=VALUE with a number as VALUE") from None
    return out


def load(args):
    """The model the arguments name: MODEL.json or ``--model`` (with ``--param`` overrides).

    Parameters
    ----------
    args : argparse.Namespace
        With ``model_json``, ``model`` and ``param``.

    Returns
    -------
    hhsym.ConductanceModel
    """
    params = _parameters(args.param)
    if bool(args.model_json) == bool(args.model):
        raise invalid("MODEL.json / --model", "both" if args.model else "neither",
                      "exactly one of a model file MODEL.json and a library model --model NAME (e.g. hh)")
    if args.model:
        from hhsym.library import get_model

        return get_model(args.model, **params)
    from hhsym.distill import load_model

    model = load_model(args.model_json)
    return model.with_params(**params) if params else model


def run(args):
    """Carry out ``hhsym export``; print one line per file written.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the parser of :func:`add_parser`.

    Returns
    -------
    int
        0 on success (errors raise HHSymError subclasses).
    """
    from hhsym import export

    if not (args.nmodl or args.brian2 or args.neuroml):
        raise invalid("export targets", "none", "at least one of --nmodl DIR, --brian2 FILE.py, --neuroml FILE.nml")
    if args.stimulus and not args.neuroml:
        raise invalid("--stimulus", args.stimulus, "--stimulus together with --neuroml (the NEURON and "
                      "Brian2 runners take STIM.csv when they run)")
    model = load(args)
    if args.nmodl:
        out = export.to_nmodl(model, args.nmodl)
        print(f"NEURON: {len(out['mod'])} .mod file(s) and {out['runner']} -> "
              f"python {out['runner']} STIM.csv OUT.csv")
    if args.brian2:
        path = export.to_brian2(model, args.brian2)
        print(f"Brian2: {path} -> python {path} STIM.csv OUT.csv")
    if args.neuroml:
        out = export.to_neuroml(model, args.neuroml, stimulus=args.stimulus)
        print(f"NeuroML 2: {out['nml']} and {out['lems']} -> pynml {out['lems']} (writes {out['output']})")
    return 0
