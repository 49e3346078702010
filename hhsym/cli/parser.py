"""The ``hhsym`` command line's argument parser: commands, options, their types and examples."""

from __future__ import annotations

import argparse

from hhsym.cli.commands import (EXIT_POOR_FIT, _cmd_demo, _cmd_distill, _cmd_fit, _cmd_fit_many, _cmd_forms,
                                _cmd_report, _cmd_simulate, _cmd_validate, _cmd_templates)
from hhsym.export.cli import add_parser as _add_export_parser
from hhsym.io.cli import add_parser as _add_inspect_parser
from hhsym.io.cli import add_recording_arguments

__all__ = ["_parser"]

_EPILOG_SIMULATE = """examples:
  hhsym simulate --stimulus step:10,10,90 --t-stop 100 --out trace.csv --plot trace.png
  hhsym simulate --model hh --param g_Na=100 --stimulus ou:8,3,2,1 --method exp_euler --out noisy.npz
stimulus specs (µA/cm², ms; several --stimulus are summed):
  step:AMP,START,STOP   ramp:A0,A1,START,STOP   pulses:AMP,WIDTH,PERIOD[,START,STOP]
  sine:AMP,FREQ_HZ[,START,STOP]   ou:MEAN,SIGMA,TAU,SEED   file:PATH (CSV/NPZ trace; its I is used)
"""

_EPILOG_FIT = """examples:
  hhsym fit RECORDING.abf --sweeps 4,8,12 --out fit.npz       # a real cell: the cell route
  hhsym fit 'B6_Ch3_IDRest_*.ibw' --sweeps 181,185 --model pospischil_rs --out fit.npz
  hhsym fit cell_0.csv cell_1.csv --out fit.npz                # densities: rate networks
  hhsym fit recording.npz --model hh --param g_Na=100 --param C_m=0.9 --out fit.npz
  hhsym fit cells.npz --model pospischil_rs --fixed p --out fit.npz   # learn Na and K, keep the M gate
then: hhsym validate fit.npz RECORDING.abf --sweeps 5,9 --report report/
"""

_EPILOG_FIT_MANY = """examples:
  hhsym fit-many cells/ --out fits/                   # a LocalCluster, one worker per core
  hhsym fit-many cells/ --out fits/ --workers 2 --time-limit 600
  hhsym fit-many cells/ --out fits/ --scheduler tcp://10.0.0.5:8786   # an existing cluster
A cell is one file (hhsym CSV/NPZ, ABF, NWB) or one Igor prefix (B6_Ch3_*.ibw with its
B6_Ch0_* currents is cell B6).  Each is fitted as 'hhsym fit' fits it, into OUT/<cell>.npz,
with OUT/<cell>.status.json and OUT/summary.json; cells with a result are skipped (resume),
failed cells are tried again.  Exit code 1 if a cell failed, 3 if a fit is poor.
"""

_EPILOG_TEMPLATES = """examples:
  hhsym templates 'B6_Ch3_IDRest_*.ibw' --train 181,185 --validate 182,183,184
  hhsym templates cell.abf --train 4,8,12 --validate 5,9,13 --templates hh,rs,rs+ih,rs+nap --json templates.json
Each template is fitted as 'hhsym fit' fits a lab file (the cell route), then validated.
"""

_EPILOG_DISTILL = """examples:
  hhsym distill fit.npz --json model.json --latex model.tex
  hhsym distill fit.npz --json model.json --trace cell_0.csv --trace cell_1.csv   # refine constants
"""

_EPILOG_FORMS = """examples:
  hhsym forms cell_0.csv cell_1.csv --json model.json --latex model.tex
  hhsym forms noisy.npz --model hh --no-search --seed 1 --json model.json
  hhsym forms cell_0.csv --roles m=+,h=-,n=+ --json model.json   # known gate roles
  hhsym forms cell_0.csv --model hh --param g_Na=100 --start model --no-search --json model.json
For noisy recordings (from ~0.05 mV of noise on V, where 'hhsym fit' warns): the
forms and constants are fitted directly by output error, without networks.
--start model refits a literature model of a related cell: its own rates (literature
forms) are the start, no role search (FormEstimator(model, start="model")).
"""

_EPILOG_REPORT = """examples:
  hhsym report fit.npz cell_0.csv cell_1.csv --model-json model.json --out report/
  hhsym report fit.npz sim.npz --heldout test.csv --truth --model hh --out report/
"""

_EPILOG_VALIDATE = """examples:
  hhsym validate fit.npz cell.abf --sweeps 6,10,14 --capacitance 120 --json heldout.json --traces heldout/
  hhsym validate model.json "B6_Ch3_IDRest_*.ibw" --sweeps 184,185 --report validation/
FIT is a fit (.npz, 'hhsym fit') or a model (.json, 'hhsym distill/forms --json').  Give the
membrane area the fit was trained with (--area or --capacitance, as 'hhsym fit' printed it);
without, it is estimated from the validated sweeps.  Per sweep: spike counts, Γ (±2 ms),
first-spike latency, AP peak and half-width, AHP depth (eFEL, in the test step), subthreshold
RMS (mV, > 5 ms from any spike).  --traces DIR: one CSV per sweep, sweep_<index>.csv, with
t,V_recorded,V_model,I (ms, mV, mV, pA).
"""

_EPILOG_DEMO = """examples:
  hhsym demo                 # writes ./hhsym-demo/
  hhsym demo --out results/  # elsewhere
  hhsym demo --real          # a real cell: fit 2 sweeps, validate on 3 (./hhsym-demo-real/)
"""


#: Exit code of a finished fit whose result does not reproduce its training data.
def _number(kind, minimum, strict, accepted):
    """An argparse type: ``kind`` (int/float) >= (or >) ``minimum``, with a message naming what is accepted."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {accepted}") from None
        if value != value or value in (float("inf"), float("-inf")) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"{text!r} is not {accepted}")
        return value

    return convert


def _roles(text):
    """An argparse type: ``m=+,h=-`` (or ``activating``/``inactivating``) -> {"m": 1, "h": -1}."""
    from hhsym.estimate.constraints import ROLE_NAMES

    out = {}
    for item in text.split(","):
        name, sep, role = item.partition("=")
        if not sep or not name.strip() or role.strip().lower() not in ROLE_NAMES:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list GATE=ROLE,... with ROLE + (activating) "
                                             "or - (inactivating), e.g. m=+,h=-,n=+")
        out[name.strip()] = ROLE_NAMES[role.strip().lower()]
    return out


_SEED = _number(int, 0, False, "a non-negative integer")
_POSITIVE = _number(float, 0.0, True, "a positive number")
_NON_NEGATIVE = _number(float, 0.0, False, "a non-negative number")
_POSITIVE_INT = _number(int, 1, False, "a positive integer")



def _add_fit_options(parser):
    """The options ``fit`` and ``fit-many`` share: template, networks, seed, budget, verdict, verbosity."""
    parser.add_argument("--model", default="hh", help="template model whose rates are learned (default: hh; "
                        "also pospischil_rs, pospischil_extended)")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a template parameter")
    parser.add_argument("--route", default="auto", choices=["auto", "networks", "cell"],
                        help="networks: rate networks inside the template (RateEstimator); cell: whole-cell "
                             "scalars and each channel's rate scale and shift fitted to whole sweeps "
                             "(CellEstimator); auto (default): cell for lab files (ABF, NWB, Igor), else networks")
    parser.add_argument("--hidden", type=_POSITIVE_INT, nargs="+", default=None,
                        help="hidden widths of the networks route (default 16)")
    parser.add_argument("--free", metavar="NAME[=LO:HI],...", default=None,
                        help="cell route: the parameters searched (default whole-cell: every g_, E_, C_m, "
                             "phi_, dV_ and, on lab files, the bridge error R_bridge in MOhm; V_offset (mV) on "
                             "request); networks route: whole-cell scalars fitted with the networks, e.g. "
                             "g_L,E_L,C_m (default none)")
    parser.add_argument("--kinetics", metavar="CHANNELS", default=None,
                        help="cell route: learn the kinetics (rate scale and shift) of these channels only, e.g. "
                             "Na,K; 'none' keeps every channel's literature forms (default: every gated channel)")
    parser.add_argument("--fixed", metavar="GATE,...", default=None,
                        help="networks route: gates kept at the template's rates while the others are learned, "
                             "e.g. p (Pospischil's M gate)")
    parser.add_argument("--bridge", metavar="fit|edges|MOHM", default=None,
                        help="cell route, lab files: fit the bridge error (default), hold it at the value measured "
                             "at the current's step edges, or at MOHM (0: none)")
    parser.add_argument("--likelihood", choices=["on", "off", "auto"], default=None,
                        help="networks route: the maximum-likelihood stage (output error over 2.5, 5, 10 ms "
                             "windows; rate bands; on noisy recordings it also fits the start's curves instead of "
                             "the noise-biased charge balance): on, off (default), or auto (on when the noise on V "
                             "is at least 0.05 mV)")
    parser.add_argument("--seed", type=_SEED, default=0, help="random seed (default 0)")
    parser.add_argument("--time-limit", type=_POSITIVE, default=None, help="soft wall-time budget in s (per fit)")
    parser.add_argument("--accept-poor-fit", action="store_true",
                        help=f"exit 0 even when a fit does not reproduce its training data (else {EXIT_POOR_FIT})")
    parser.add_argument("--quiet", action="store_true", help="no progress lines or bars")
    parser.add_argument("--verbose", action="store_true", help="also one line per optimiser iteration (fit-many: "
                        "per cell)")


def _parser():
    parser = argparse.ArgumentParser(
        prog="hhsym",
        description="Learn Hodgkin-Huxley rate functions from V(t) and I(t) and return them as equations.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sim = sub.add_parser("simulate", help="simulate a model under a current protocol",
                         epilog=_EPILOG_SIMULATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sim.add_argument("--model", default="hh", help="library model (default: hh)")
    sim.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a parameter")
    sim.add_argument("--stimulus", action="append", required=True, metavar="SPEC", help="current protocol")
    sim.add_argument("--t-stop", type=_POSITIVE, default=100.0, help="duration in ms (default 100)")
    sim.add_argument("--dt", type=_POSITIVE, default=0.01, help="step / sampling interval in ms (default 0.01)")
    sim.add_argument("--method", default="rk4", choices=["rk4", "exp_euler", "dopri5"])
    sim.add_argument("--out", required=True, help="output trace (.csv or .npz)")
    sim.add_argument("--plot", help="also save a PNG figure here")
    sim.set_defaults(func=_cmd_simulate)

    fit = sub.add_parser("fit", help="learn the rate functions from recorded traces",
                         epilog=_EPILOG_FIT, formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("traces", nargs="+", metavar="TRACE", help="traces: hhsym CSV/NPZ, ABF, NWB or Igor IBW")
    add_recording_arguments(fit)
    _add_fit_options(fit)
    fit.add_argument("--out", required=True, help="fitted estimator (.npz)")
    fit.set_defaults(func=_cmd_fit)

    many = sub.add_parser("fit-many", help="fit every cell of a folder on a Dask cluster (resumable)",
                          epilog=_EPILOG_FIT_MANY, formatter_class=argparse.RawDescriptionHelpFormatter)
    many.add_argument("directory", metavar="DIR", help="folder of recordings (hhsym CSV/NPZ, ABF, NWB, Igor IBW)")
    add_recording_arguments(many, current=False)
    _add_fit_options(many)
    many.add_argument("--out", required=True, metavar="RESULTS", help="results folder: RESULTS/<cell>.npz, ...")
    many.add_argument("--workers", type=_POSITIVE_INT, default=None, metavar="N",
                      help="worker processes of the local Dask cluster (default one per core; one thread "
                           "each, numba parallelises inside a fit)")
    many.add_argument("--scheduler", metavar="ADDRESS", default=None,
                      help="use an existing Dask cluster (tcp://HOST:PORT) instead of a local one")
    many.set_defaults(func=_cmd_fit_many)

    dis = sub.add_parser("distill", help="turn a fit into closed-form equations (JSON, LaTeX)",
                         epilog=_EPILOG_DISTILL, formatter_class=argparse.RawDescriptionHelpFormatter)
    dis.add_argument("fit", metavar="FIT.npz", help="a fit written by 'hhsym fit'")
    dis.add_argument("--json", help="write the model description here")
    dis.add_argument("--latex", help="write a standalone LaTeX document here")
    dis.add_argument("--backend", default="auto", choices=["auto", "forms", "operon", "pysr"])
    dis.add_argument("--trace", action="append", metavar="TRACE",
                     help="the traces the fit was made on: refine the constants against them")
    add_recording_arguments(dis)
    dis.add_argument("--loss", default="auto", choices=["auto", "shooting", "output"],
                     help="refinement loss: output error with a form search on the recordings (slower; the "
                          "default when the fit measured noise on V >= 0.05 mV) or the estimator's own "
                          "(the default otherwise)")
    dis.add_argument("--time-limit", type=_POSITIVE, default=None,
                     help="soft wall-time budget in s of the refinement (the form search and its final fit)")
    dis.add_argument("--quiet", action="store_true", help="no progress lines or bars")
    dis.add_argument("--verbose", action="store_true", help="also one line per optimiser iteration")
    dis.set_defaults(func=_cmd_distill)

    frm = sub.add_parser("forms", help="fit closed-form rates directly to (noisy) traces (JSON, LaTeX)",
                         epilog=_EPILOG_FORMS, formatter_class=argparse.RawDescriptionHelpFormatter)
    frm.add_argument("traces", nargs="+", metavar="TRACE", help="traces: hhsym CSV/NPZ, ABF, NWB or Igor IBW")
    add_recording_arguments(frm)
    frm.add_argument("--model", default="hh", help="template model whose rates are fitted (default: hh)")
    frm.add_argument("--start", default="roles", choices=["roles", "model"],
                     help="start from a search over gate roles (default) or from the --model's own rates")
    frm.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a template parameter")
    frm.add_argument("--search", action=argparse.BooleanOptionalAction, default=True,
                     help="search each rate's form by the output error (default) or keep the role forms")
    frm.add_argument("--roles", type=_roles, default=None, metavar="GATE=ROLE,...",
                     help="known gate roles, + activating or - inactivating (e.g. m=+,h=-,n=+); "
                          "default: search every pattern")
    frm.add_argument("--starts", type=_POSITIVE_INT, default=60, metavar="N",
                     help="random starts per gate-role hypothesis in the role search (default 60)")
    frm.add_argument("--seed", type=_SEED, default=0, help="random seed of the role search (default 0)")
    frm.add_argument("--free", metavar="NAME[=LO:HI],...", default=None,
                     help="whole-cell scalars fitted with the rates, e.g. g_Na,g_K,g_L,E_L=-90:-50,C_m, with "
                          "optional bounds (default none; a reversal potential stays within 30 mV of the "
                          "template's value unless bounded otherwise)")
    frm.add_argument("--fixed", metavar="GATE,...", default=None,
                     help="gates kept as the template writes them (with --start model), e.g. p")
    frm.add_argument("--time-limit", type=_POSITIVE, default=None, help="soft budget in s of each search stage")
    frm.add_argument("--accept-poor-fit", action="store_true",
                     help=f"exit 0 even when the fit does not reproduce its training data (else {EXIT_POOR_FIT})")
    frm.add_argument("--json", help="write the model description here")
    frm.add_argument("--latex", help="write a standalone LaTeX document here")
    frm.add_argument("--quiet", action="store_true", help="no progress lines or bars")
    frm.add_argument("--verbose", action="store_true", help="also one line per optimiser iteration")
    frm.set_defaults(func=_cmd_forms)

    rep = sub.add_parser("report", help="write a report folder for a fit (and its distilled model)",
                         epilog=_EPILOG_REPORT, formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("fit", metavar="FIT.npz")
    rep.add_argument("traces", nargs="+", metavar="TRACE", help="the training traces (any format hhsym reads)")
    add_recording_arguments(rep)
    rep.add_argument("--model-json", help="a distilled model written by 'hhsym distill --json'")
    rep.add_argument("--heldout", metavar="TRACE", help="a recording not used for fitting")
    rep.add_argument("--truth", action="store_true",
                     help="the data are simulated from --model: compare rates with it")
    rep.add_argument("--model", default="hh", help="ground-truth model for --truth (default hh)")
    rep.add_argument("--param", action="append", metavar="NAME=VALUE")
    rep.add_argument("--out", required=True, help="report folder")
    rep.set_defaults(func=_cmd_report)

    val = sub.add_parser("validate", help="predict held-out sweeps with a fit and compare (eFEL, Γ, RMS)",
                         epilog=_EPILOG_VALIDATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    val.add_argument("fit", metavar="FIT", help="a fit (.npz) or a model (.json)")
    val.add_argument("recording", metavar="RECORDING", help="ABF, NWB, Igor .ibw (or a quoted glob), hhsym CSV/NPZ")
    add_recording_arguments(val)
    val.add_argument("--json", metavar="OUT", help="write the per-sweep results and the summary here (.json)")
    val.add_argument("--traces", metavar="DIR", help="write one CSV per sweep here (the folder is replaced whole)")
    val.add_argument("--report", metavar="DIR", help="write a report folder: f-I curve, overlays, table")
    val.set_defaults(func=_cmd_validate)

    tpl = sub.add_parser("templates", help="which channels does this cell need? candidate templates fitted on "
                         "training sweeps, ranked on held-out sweeps", epilog=_EPILOG_TEMPLATES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    tpl.add_argument("recording", metavar="RECORDING", help="a lab file (ABF, NWB, Igor glob)")
    tpl.add_argument("--train", required=True, metavar="SWEEPS", help="training sweeps, e.g. 181,184")
    tpl.add_argument("--validate", required=True, metavar="SWEEPS", help="held-out sweeps, e.g. 182,183,185")
    tpl.add_argument("--templates", default=None, metavar="SPEC,...",
                     help="BASE[+CHANNEL...] each; bases hh, rs; channels m, ih, a, nap, cal "
                          "(default hh,hh+m,rs,rs+ih)")
    tpl.add_argument("--area", type=_POSITIVE, default=None, help="membrane area in cm² (default estimated)")
    tpl.add_argument("--time-limit", type=_POSITIVE, default=240.0, help="s per template's fit (default 240)")
    tpl.add_argument("--seed", type=_SEED, default=0, help="random seed (default 0)")
    tpl.add_argument("--json", help="write the table here (.json)")
    tpl.set_defaults(func=_cmd_templates)

    demo = sub.add_parser("demo", help="the whole pipeline on simulated HH data, with a report",
                          epilog=_EPILOG_DEMO, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--out", default=None, help="output folder (default ./hhsym-demo, with --real "
                      "./hhsym-demo-real)")
    demo.add_argument("--noise", type=_NON_NEGATIVE, default=0.0,
                      help="Gaussian noise on the recorded V (mV, default 0; see the README's limitations)")
    demo.add_argument("--real", action="store_true",
                      help="instead: a real cell shipped with hhsym (BluePyEfe's B6) fitted on two sweeps by the "
                           "cell route and validated on three others")
    demo.add_argument("--time-limit", type=_POSITIVE, default=240.0,
                      help="with --real: the fit's budget in s (default 240)")
    demo.set_defaults(func=_cmd_demo)

    _add_inspect_parser(sub)
    _add_export_parser(sub)
    return parser
