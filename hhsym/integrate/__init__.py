"""Numba integration kernels: arrays and floats in, arrays out.

Each method lives in its own module whose kernel source (below the marker
``# --- kernel source below ---``) is copied by :mod:`hhsym.codegen` into a
generated module that also defines the model functions the kernel calls:

``rhs_block(Y, I, P, D)``
    derivatives of every neuron (column) of the state block ``Y`` (``D``
    must not overlap the inputs: the block functions promise LLVM that
    their arrays do not overlap, see :func:`.vmath.restrict_arrays`);
``rhs_point(Y, I, P, D, j)``
    the same for column ``j`` only;
``rhs_lane(y, I_j, p)`` with ``load_state``, ``load_params``, ``store_state``, ``axpy``, ``add``
    one neuron's derivatives from its state and parameter tuples, and
    elementwise helpers over state tuples: inlined, so a method's loop over a
    block's neurons keeps every stage in registers (:mod:`.rk4`);
``relax_block(Y, I, P, K, T)``
    relaxation form ``dy/dt = K (T - y)`` of every state (exact for gates,
    and for V with the gates frozen);
``stim_in(i, t, lo, hi, ptr, kind, par, data)``
    stimulus ``i`` at ``t`` as seen from inside the step ``[lo, hi]``
    (with ``stim_at``, ``stimulus_class`` and ``stage_currents`` from
    :mod:`.stimulus_kernel`, which the fixed-step driver uses to evaluate
    steps and pulse trains once per constant segment, and uniform tables
    without the kind dispatch);
``N_STATES``
    number of states (V first).

The fixed-step methods (:mod:`.rk4`, :mod:`.exp_euler`) each define one
``step`` over the shared driver :mod:`.engine_fixed`, whose workers claim blocks
of neurons dynamically (:mod:`.schedule`); the adaptive
:mod:`.dopri5` has its own driver.  Array conventions: states ``(n_states, n)``,
parameters ``(n_params, n)`` in the order of ``model.params``, output
``(n_recorded_states, n, n_samples)``; voltages in mV, time in ms, currents µA/cm².
"""
