"""Losses on recordings, each taking a rate parametrisation (:mod:`hhsym.estimate.rates.base`) and the
recordings: the stage-1 charge balance and multiple shooting (:mod:`.charge_balance`: ``ChargeBalance``,
``ShootingProblem``; window layout in :mod:`.windows`, numba kernels in :mod:`.kernels` and :mod:`.tables`),
output error over windows (:mod:`.output_error`, :mod:`.trajectory`)."""
