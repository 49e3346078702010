"""The refinement's choices that need no fit: which loss ``loss="auto"`` means, which recordings the form
search compares forms on."""

import numpy as np
import pytest

from hhsym.errors import UnknownNameError


def test_auto_loss_is_output_error_on_noisy_recordings_only():
    """``loss="auto"`` refines by output error when the estimator measured noise on V (the shooting loss is
    biased there), by the estimator's own loss otherwise, and never asks for a refit without refinement."""
    from hhsym.distill.distillation import resolve_loss
    from hhsym.estimate.checks import NOISE_WARN

    class Fitted:
        def __init__(self, noise):
            self.noise_ = noise

    assert resolve_loss("auto", Fitted(0.3)) == "output"
    assert resolve_loss("auto", Fitted(NOISE_WARN)) == "output"
    assert resolve_loss("auto", Fitted(0.01)) == "shooting"
    assert resolve_loss("auto", Fitted(None)) == "shooting" and resolve_loss("auto", object()) == "shooting"
    assert resolve_loss("auto", Fitted(float("nan"))) == "shooting"
    assert resolve_loss("auto", Fitted(0.3), refine=False) == "shooting"
    assert resolve_loss("shooting", Fitted(0.3)) == "shooting" and resolve_loss("output", Fitted(0.0)) == "output"
    for bad in ("charge", None, ["output"], np.array(["output"])):
        with pytest.raises(UnknownNameError, match="invalid loss=.*one of auto, shooting, output"):
            resolve_loss(bad, Fitted(0.3))


def test_form_search_compares_forms_on_evenly_spread_recordings():
    """The search's recordings: the fewest evenly spread ones reaching its recorded time, at least one."""
    from hhsym.estimate.search.form_search import search_recordings

    sweep = [(0.05, np.zeros(20000), np.zeros(20000))] * 8  # 8 x 1 s
    assert search_recordings(sweep, 2000.0) == [0, 7]
    assert search_recordings(sweep, 3000.0) == [0, 4, 7]  # rounding spreads them: 0, 3.5 -> 4, 7
    assert search_recordings(sweep, 100.0) == [0]
    assert search_recordings(sweep, 1e9) == list(range(8)) and search_recordings(sweep, None) == list(range(8))
    assert search_recordings(sweep[:1], 10.0) == [0]


def test_the_record_says_when_forms_were_compared_on_fewer_recordings():
    """The summary line names the searched recordings only when they are fewer than the fitted ones."""
    from hhsym.distill.result import compared_on, refinement_line

    ref = {"loss": "output", "rms_start": 0.29, "rms": 0.31, "n_constants": 17, "accepted": True, "n_traces": 8,
           "searched": [0, 7]}
    assert compared_on(ref) == 2
    assert "on the 2 of 8 recordings the forms were compared on" in refinement_line(ref)
    for every in (dict(ref, searched=list(range(8))), {k: v for k, v in ref.items() if k != "searched"}):
        assert compared_on(every) is None and "compared on" not in refinement_line(every)


def test_weighted_singles_follow_a_rate_where_it_is_a_large_share_of_its_gate():
    """The form search's second start fits each rate's single family with weights share², so a network bent
    where its rate is a small share of α + β (where the recordings barely determine it) still gives the true
    family with constants near the truth; tied families give the one with fewer constants."""
    from hhsym.distill.selection import _identifiable
    from hhsym.estimate.rates.formfit import fit_family
    from hhsym.estimate.search.form_search import weighted_singles
    from hhsym.library import hodgkin_huxley

    hh = hodgkin_huxley()
    grid = np.linspace(-80.0, 40.0, 121)
    true = {k: np.asarray(f(grid), dtype=float) for k, f in hh.rate_functions().items()}
    bent = {}
    for k, r in true.items():
        gate = k.split("_", 1)[1]
        share = r / (true[f"alpha_{gate}"] + true[f"beta_{gate}"])
        bent[k] = r * (1.0 + 0.8 * (1.0 - share) ** 6)  # up to 80 % off where the rate hardly counts
    masks = _identifiable(bent, hh, 0.05, grid.size)
    got = weighted_singles(grid, bent, masks, list(true))
    assert {k: f.form for k, f in got.items()} == {
        "alpha_m": "linoid", "beta_m": "exponential", "alpha_h": "exponential", "beta_h": "sigmoid",
        "alpha_n": "linoid", "beta_n": "exponential"}
    for k, f in got.items():
        gate = k.split("_", 1)[1]
        share = true[k] / (true[f"alpha_{gate}"] + true[f"beta_{gate}"])
        plain = fit_family(f.form, grid[masks[k]], bent[k][masks[k]])[0]  # the same family, unweighted

        def off(fit, where):
            return np.max(np.abs(fit.evaluate(grid[where]) / true[k][where] - 1.0))

        assert off(f, share >= 0.5) < 0.06, k  # bent there by at most 1.25 %; measured 3.0-5.6 %
        assert off(f, share >= 0.3) < off(plain, share >= 0.3), k  # measured 4-12 % against 10-20 %
