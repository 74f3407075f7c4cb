"""Fixtures shared by several test files; the helper modules here (clihelpers, elimhelpers,
fidhelpers) are importable from the test folders below."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def stand_in(tmp_path_factory):
    """A stand-in FID Inception weights file: the real file's architecture, random values
    (made by tests/fidhelpers.py's make_stand_in_weights), built once per session."""
    from fidhelpers import make_stand_in_weights

    from latentdim.metrics.fid import WEIGHTS_FILE

    return make_stand_in_weights(tmp_path_factory.mktemp("fid_weights") / WEIGHTS_FILE, seed=0)


@pytest.fixture(autouse=True)
def few_verification_steps(monkeypatch):
    """Runs that settle on vectors end with a fresh verification (training/verify.py): 200 steps
    per fresh network here instead of 10,000, so the path runs in every test at little cost."""
    from latentdim.training import verify

    monkeypatch.setattr(verify, "DEFAULT_STEPS", 200)
