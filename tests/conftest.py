"""Fixtures shared by the whole suite.

``kernel_device``: the devices that run our CUDA kernels. ``emu`` runs each test three times, with the
threads of every block scheduled forward, reverse and shuffled (order-dependent kernels fail in at least
one); ``cuda`` runs when CuPy finds a GPU and is skipped, saying so, otherwise.
"""
import pytest

import gpucnn
from gpucnn import emu

needs_cuda = pytest.mark.skipif(not gpucnn.cuda_available(),
                                reason="needs a CUDA GPU: CuPy is not installed or finds no GPU")

KERNEL_DEVICES = [pytest.param(("emu", order), id=f"emu-{order}") for order in ("forward", "reverse", "shuffled")]
KERNEL_DEVICES.append(pytest.param(("cuda", None), id="cuda", marks=[needs_cuda, pytest.mark.cuda]))


@pytest.fixture(params=KERNEL_DEVICES)
def kernel_device(request):
    """The name of a device that runs our kernels ("emu" in one thread order, or "cuda")."""
    name, order = request.param
    if order is None:
        yield name
    else:
        with emu.thread_order(order, seed=1234):
            yield name


@pytest.fixture(autouse=True)
def _process_settings_restored():
    """The float32 GEMM precision and the default dtype are process-wide (as in PyTorch): a test (or
    an in-process CLI run) that changes them must not change the tests after it."""
    yield
    gpucnn.set_float32_matmul_precision("highest")
    gpucnn.set_default_dtype(gpucnn.float32)
