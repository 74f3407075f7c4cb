"""Diagnostics of SPEC §7: Frechet distance and NAC."""

from latentdim.metrics.frechet import frechet_distance, frechet_distance_samples, gaussian_stats
from latentdim.metrics.covariance import nac, normalised_abs_covariance

__all__ = [
    "frechet_distance",
    "frechet_distance_samples",
    "gaussian_stats",
    "nac",
    "normalised_abs_covariance",
]
