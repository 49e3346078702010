"""Analysis of recordings: passive properties and artefacts (:mod:`.passive`), electrophysiology
features through eFEL and noise (:mod:`.features`), the ``hhsym inspect`` summary (:mod:`.inspect`), a fit
against held-out sweeps (:mod:`.validation`: ``hhsym validate``, :func:`hhsym.validate_fit`)."""
