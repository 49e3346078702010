"""Parametrisations of gate curves, all under one contract (:class:`.base.GateParametrisation`: rates,
node tables with exact Jacobians, penalty rows, public constants and sympy form where defined): networks
(:mod:`.network`, as a parametrisation :mod:`.network_rates`), generic and spline families (:mod:`.curves`),
closed literature forms (:mod:`.closed_forms`, fitted to curves by :mod:`.formfit`, paired per gate by
:mod:`.form_pairs`)."""
