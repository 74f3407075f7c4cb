"""Diagnostics of SPEC §7 and issue 4: Frechet distance, NAC, precision/recall, classical estimators."""

from latentdim.metrics.frechet import frechet_distance, frechet_distance_samples, gaussian_stats
from latentdim.metrics.covariance import nac, normalised_abs_covariance
from latentdim.metrics.estimators import classical_estimates, classical_estimates_or_reasons, lpca, mle, twonn
from latentdim.metrics.precision_recall import precision_recall

__all__ = [
    "classical_estimates",
    "classical_estimates_or_reasons",
    "frechet_distance",
    "frechet_distance_samples",
    "gaussian_stats",
    "lpca",
    "mle",
    "nac",
    "normalised_abs_covariance",
    "precision_recall",
    "twonn",
]
