"""gpucnn.backend: the device seam. The cuda device's bfloat16 rule is tested with a stand-in array module
(the CI machine has no GPU)."""
import types

import numpy as np
import pytest

import gpucnn
from gpucnn.backend import Device, require_cupy_bfloat16
from gpucnn.errors import DeviceError


def _fake_cupy(version):
    return types.SimpleNamespace(__version__=version, asarray=lambda a, dtype=None: np.asarray(a, dtype=dtype))


@pytest.mark.parametrize("version", ["13.6.0", "12.3.0"])
def test_bfloat16_on_cuda_needs_cupy_14(version):
    with pytest.raises(DeviceError, match=rf"need CuPy >= 14 \(found CuPy {version}, which has no bfloat16"):
        require_cupy_bfloat16(version)
    dev = Device("cuda", _fake_cupy(version), uses_kernels=True)
    with pytest.raises(DeviceError, match="bfloat16 tensors on device 'cuda'"):
        dev.asarray(np.zeros(3, np.float32), dtype=gpucnn.bfloat16)  # cast to it
    with pytest.raises(DeviceError, match="bfloat16 tensors on device 'cuda'"):
        dev.asarray(np.zeros(3, gpucnn.bfloat16))  # or move one there
    assert dev.asarray(np.zeros(3, np.float16)).dtype == np.float16  # float16 is fine on any CuPy


@pytest.mark.parametrize("version", ["14.0.0", "14.2.1", "15.0.0rc1", "main"])
def test_cupy_14_and_later_take_bfloat16(version):
    require_cupy_bfloat16(version)
    dev = Device("cuda", _fake_cupy(version), uses_kernels=True)
    assert dev.asarray(np.ones(2, np.float32), dtype=gpucnn.bfloat16).dtype == gpucnn.bfloat16
