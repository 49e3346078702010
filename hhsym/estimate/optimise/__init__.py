"""Levenberg–Marquardt: with geodesic acceleration (:mod:`.lm`) and per-window Schur complement
(:mod:`.window_lm`)."""
