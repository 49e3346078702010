"""Losses on recordings: the charge balance with multiple shooting (:mod:`.charge_balance`, numba
kernels in :mod:`.kernels`), output error over windows (:mod:`.output_error`, :mod:`.trajectory`)."""
