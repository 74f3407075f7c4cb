"""The built-in synthetic data of the MaskAAE papers (SPEC §6), whose intrinsic dimension is known.

A latent code ``z ~ N(0, I_n)`` is pushed through a fixed random two-layer fully-connected network
with leaky-ReLU after each layer. Everything (weights and samples) is drawn from one
``np.random.default_rng(seed)``, in this order, so a seed names one data set for good:

1. ``W1`` (n, 128) ~ N(0, 1/n)
2. ``b1`` (128,) ~ N(0, 0.1^2)
3. ``W2`` (128, d) ~ N(0, 1/128)
4. ``b2`` (d,) ~ N(0, 0.1^2)
5. ``z`` (samples, n) ~ N(0, 1)

Changing that order changes every published number made with this data; don't.
"""

from __future__ import annotations

import numpy as np

from latentdim.errors import LatentdimError

# SPEC §6: 128 units a layer.
HIDDEN_UNITS = 128
# Slope of the leaky-ReLU for negative inputs; the usual choice in the papers' networks.
NEGATIVE_SLOPE = 0.2
# Standard deviation of the bias entries: small, so the kinks of the leaky-ReLU sit near 0.
BIAS_STD = 0.1

DEFAULT_D = 128
DEFAULT_SAMPLES = 20000
DEFAULT_SEED = 0


def _leaky_relu(x: np.ndarray) -> np.ndarray:
    """Leaky-ReLU with slope :data:`NEGATIVE_SLOPE` for negative inputs, elementwise."""
    return np.where(x >= 0, x, NEGATIVE_SLOPE * x)


def make_synthetic(
    n: int, d: int = DEFAULT_D, samples: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED
) -> np.ndarray:
    """Draws the SPEC §6 synthetic data: an ``n``-dimensional manifold embedded in ``R^d``.

    ``x = lrelu(lrelu(z @ W1 + b1) @ W2 + b2)`` with ``z ~ N(0, I_n)``, ``W1`` of shape
    (n, 128), ``W2`` of shape (128, d), and leaky-ReLU of negative slope 0.2 after each layer.
    The network and ``z`` are both drawn from ``np.random.default_rng(seed)`` (order in the module
    docstring), so equal arguments give equal arrays on every machine.

    Why the data is exactly ``n``-dimensional (for ``n <= min(d, 128)``): a Gaussian ``W1`` has
    rank ``min(n, 128)`` almost surely, so ``z -> z @ W1 + b1`` is an injective affine map of
    ``R^n`` onto an n-dimensional affine subspace of ``R^128``. Leaky-ReLU with a positive slope
    is a bijection of each coordinate, so it bends that subspace (piecewise linearly) without
    collapsing it. When ``d >= 128`` a Gaussian ``W2`` has full rank 128 almost surely, so the
    second layer is again injective and the image stays an embedded n-dimensional manifold.
    When ``d < 128`` the second layer is a projection, but a generic one: at almost every ``z``
    the Jacobian ``W1 diag(s1) W2 diag(s2)`` (``s`` the slopes in effect) still has rank
    ``min(n, d)``, so the data is locally ``n``-dimensional whenever ``n <= d``, though it may
    fold onto itself globally. For ``n > min(d, 128)`` the true dimension is ``min(d, 128)``,
    not ``n``; no error is raised for that, so choose ``n`` below both.

    Args:
        n: Latent dimension, the true intrinsic dimension of the data (see above).
        d: Ambient dimension of each output vector.
        samples: Number of vectors to draw.
        seed: Seed of the generator that draws the network and the latent codes.

    Returns:
        float32 array of shape (samples, d).

    Raises:
        LatentdimError: If ``n``, ``d`` or ``samples`` is below 1, or ``seed`` is negative.
    """
    for name, value, low in (("n", n, 1), ("d", d, 1), ("samples", samples, 1), ("seed", seed, 0)):
        # bool is an int subclass; n=True is almost surely a bug, not a request for n=1.
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise LatentdimError(f"synthetic data: {name} must be an integer, got {value!r}")
        if value < low:
            raise LatentdimError(f"synthetic data: {name} must be at least {low}, got {value}")

    rng = np.random.default_rng(seed)
    # Draw order is part of the data's definition (module docstring); keep it.
    w1 = rng.normal(0.0, 1.0 / np.sqrt(n), size=(n, HIDDEN_UNITS))
    b1 = rng.normal(0.0, BIAS_STD, size=HIDDEN_UNITS)
    w2 = rng.normal(0.0, 1.0 / np.sqrt(HIDDEN_UNITS), size=(HIDDEN_UNITS, d))
    b2 = rng.normal(0.0, BIAS_STD, size=d)
    z = rng.standard_normal(size=(samples, n))

    # Float64 throughout, rounded once at the end, so that BLAS summation-order differences
    # between machines almost never survive into the float32 result.
    hidden = _leaky_relu(z @ w1 + b1)
    x = _leaky_relu(hidden @ w2 + b2)
    return x.astype(np.float32)
