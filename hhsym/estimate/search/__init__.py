"""Gate-role hypotheses and multistart searches.

One loop over the gate-role patterns (:mod:`.roles`) for both estimators: the
Boltzmann family of the networks' generic start (:mod:`.network_start`) and the
closed-form pairs by charge balance (:mod:`.charge_search`), both refined by one
successive halving (:mod:`.halving`); the output-error form search is
:mod:`.form_search`."""
