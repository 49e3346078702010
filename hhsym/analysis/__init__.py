"""Analysis of recordings: passive properties and artefacts (:mod:`.passive`), electrophysiology
features through eFEL and noise (:mod:`.features`), the ``hhsym inspect`` summary (:mod:`.inspect`)."""
