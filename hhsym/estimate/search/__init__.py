"""Gate-role hypotheses and multistart searches: generic curve families (:mod:`.roles`) and
closed-form pairs by charge balance (:mod:`.charge_search`), both refined by one successive halving
(:mod:`.halving`)."""
