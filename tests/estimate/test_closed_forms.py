"""Literature rate families (hhsym.estimate.rates.closed_forms)."""

import numpy as np
import pytest

from hhsym.estimate.rates.closed_forms import FAMILIES


def test_every_family_converts_public_and_internal_constants_both_ways():
    pubs = {"constant": {"c": 0.3}, "exponential": {"A": 0.07, "k": -20.0},
            "sigmoid": {"A": 1.0, "B": -35.0, "k": 10.0}, "linoid": {"A": 1.0, "B": -40.0, "k": 10.0}}
    for name, pub in pubs.items():
        fam = FAMILIES[name]
        back = fam.public(np.array(fam.internal(pub)))
        assert back == pytest.approx(pub, rel=1e-14), name
