"""Fixtures shared by several test files."""

import pytest


@pytest.fixture(scope="session")
def stand_in(tmp_path_factory):
    """A stand-in FID Inception weights file: the real file's architecture, random values
    (made by tests/test_fid.py's make_stand_in_weights), built once per session."""
    from test_fid import make_stand_in_weights

    from latentdim.metrics.fid import WEIGHTS_FILE

    return make_stand_in_weights(tmp_path_factory.mktemp("fid_weights") / WEIGHTS_FILE, seed=0)
