"""Seeding: PyTorch's accepted range for manual_seed, and run configs that NumPy's generators can use."""
import numpy as np
import pytest

import gpucnn
from gpucnn.errors import ArgumentError
from gpucnn.training.run import RunConfig, build_run


def test_manual_seed_accepts_pytorchs_range_and_is_reproducible():
    for seed in (0, 7, -1, 2**64 - 1, -2**63, np.int64(3)):
        gpucnn.manual_seed(seed)
        a = gpucnn.random.host_generator().random(3)
        gpucnn.manual_seed(seed)
        np.testing.assert_array_equal(a, gpucnn.random.host_generator().random(3))


@pytest.mark.parametrize("seed", [1.5, "1", True, 2**64, -2**63 - 1])
def test_manual_seed_rejects_other_values(seed):
    with pytest.raises(ArgumentError, match=r"manual_seed: seed must be an integer"):
        gpucnn.manual_seed(seed)


@pytest.mark.parametrize("seed", [-1, 2**32, 0.5])
def test_run_config_seed_must_suit_numpys_generators(seed):
    # Found by the resume fuzz test: a checkpoint whose run config says seed -1 crashed in NumPy.
    with pytest.raises(ArgumentError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        build_run(RunConfig(model="keras-mnist", seed=seed))
