"""Parametrisations of gate curves: networks (:mod:`.network`), generic and spline families
(:mod:`.curves`), closed literature forms (:mod:`.closed_forms`, fitted to curves by :mod:`.formfit`,
paired per gate by :mod:`.form_pairs`)."""
