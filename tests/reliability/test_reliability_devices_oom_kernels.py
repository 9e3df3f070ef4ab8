"""Mixed devices, out-of-memory and kernel compile errors: each becomes one clear GpucnnError.

No GPU is needed: out-of-memory is simulated with a stand-in exception registered as an out-of-memory
type (as CuPy's ``cupy.cuda.memory.OutOfMemoryError`` is on a GPU), and the CUDA compile path is driven
by a fake module whose ``get_function`` raises like CuPy's ``CompileException``.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import gpucnn
from gpucnn import memory
from gpucnn import nn
from gpucnn.data import ArrayDataset
from gpucnn.errors import DeviceError, GpucnnError, KernelError, OutOfMemoryError
from gpucnn.functions import conv as conv_module
from gpucnn.optim import SGD
from gpucnn.training import Trainer, evaluate


def images(n=32, channels=1, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, channels, size, size)).astype(np.uint8), rng.integers(0, 3, n)


def small_model(seed=0):
    gpucnn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding="same"), nn.ReLU(), nn.Flatten(), nn.Linear(128, 3))


# -- mixed devices ---------------------------------------------------------------------------------------
def test_cpu_tensor_into_an_emu_layer_says_how_to_move_it():
    model = small_model().to("emu")
    with pytest.raises(DeviceError) as info:
        model(gpucnn.tensor(np.zeros((2, 1, 8, 8), np.float32)))           # on cpu
    msg = str(info.value)
    assert msg.startswith("Conv2d #0 (1->2, 3x3): conv2d: inputs are on different devices (cpu and emu)")
    assert "x.to('emu')" in msg and "device='emu'" in msg and "model.to('cpu')" in msg


def test_emu_tensor_into_a_cpu_layer_says_how_to_move_it():
    model = small_model().to("emu")
    model[3].to("cpu")                      # the last layer left behind on the cpu
    with pytest.raises(DeviceError, match=r"^Linear #3 \(128->3\): linear: inputs are on different devices "
                                          r"\(emu and cpu\).*x\.to\('cpu'\).*model\.to\('emu'\)"):
        model(gpucnn.tensor(np.zeros((2, 1, 8, 8), np.float32), device="emu"))


def test_model_moved_after_the_trainer_was_built_is_a_device_error():
    # The Trainer moves batches to the device the model had when it was built; moving the model later
    # mixes devices, and the error says how to fix it (not a NumPy traceback).
    x, y = images()
    model = small_model()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), ArrayDataset(x, y), epochs=1, verbose=0)
    model.to("emu")
    with pytest.raises(DeviceError) as info:
        trainer.fit()
    msg = str(info.value)
    assert "Conv2d #0 (1->2, 3x3)" in msg and "different devices (cpu and emu)" in msg
    assert "x.to('emu')" in msg and "model.to('cpu')" in msg


def test_evaluate_on_another_device_than_the_model():
    x, y = images()
    model = small_model().to("emu")
    with pytest.raises(DeviceError, match=r"different devices \(cpu and emu\).*model\.to\('cpu'\)"):
        evaluate(model, (x, y), device="cpu")


def test_trainer_with_device_moves_the_model_and_trains():
    # the supported way: give the Trainer the device; model and batches then agree
    x, y = images()
    model = small_model()
    Trainer(model, SGD(model.parameters(), lr=0.1), ArrayDataset(x, y), epochs=1, device="emu",
            verbose=0).fit()
    assert all(p.device == "emu" for p in model.parameters())


# -- out of memory ---------------------------------------------------------------------------------------
class FakeCupyOOM(MemoryError):
    """Mimics ``cupy.cuda.memory.OutOfMemoryError(size, total, limit)``."""

    def __init__(self, size, total, limit=0):
        self._size, self._total, self._limit = size, total, limit
        super().__init__(f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes).")


class FakeCudaRuntimeError(RuntimeError):
    """Mimics CuPy's ``CUDARuntimeError`` for a failed cudaMalloc inside a library call."""


FakeCudaRuntimeError.__module__ = "cupy_backends.cuda.api.runtime"


@pytest.fixture
def oom_types(monkeypatch):
    """Register the stand-in as an out-of-memory type (as CuPy's is on a GPU)."""
    monkeypatch.setattr(memory, "OOM_ERRORS", memory.OOM_ERRORS + (FakeCupyOOM,))
    return FakeCupyOOM


def _conv_forward_raises(monkeypatch, exc):
    def forward_cpu(self, xs):
        raise exc

    monkeypatch.setattr(conv_module.Conv2d, "forward_cpu", forward_cpu)


def test_oom_in_the_backward_pass_names_the_op_and_the_pass(monkeypatch, oom_types):
    def backward_cpu(self, xs, gy):
        raise FakeCupyOOM(2 ** 30, 2 ** 31)

    monkeypatch.setattr(conv_module.Conv2d, "backward_cpu", backward_cpu)
    out = small_model()(gpucnn.tensor(np.zeros((64, 1, 8, 8), np.float32)))
    with pytest.raises(OutOfMemoryError) as info:
        out.sum().backward()
    msg = str(info.value)
    assert msg.startswith("conv2d: out of memory on cpu in the backward pass")
    assert "1,073,741,824 bytes (1.0 GiB)" in msg and "--batch-size 32" in msg


def test_oom_in_an_op_names_the_op_the_allocation_and_a_smaller_batch(monkeypatch, oom_types):
    _conv_forward_raises(monkeypatch, FakeCupyOOM(3 * 2 ** 30, 70 * 2 ** 30))
    with pytest.raises(OutOfMemoryError) as info:
        small_model()(gpucnn.tensor(np.zeros((256, 1, 8, 8), np.float32)))
    err = info.value
    msg = str(err)
    assert isinstance(err, MemoryError) and isinstance(err, GpucnnError)
    assert msg.startswith("Conv2d #0 (1->2, 3x3): conv2d: out of memory on cpu in the forward pass")
    assert "3,221,225,472 bytes (3.0 GiB)" in msg                     # what was being allocated
    assert "70.0 GiB) already allocated" in msg
    assert "(256, 1, 8, 8) float32" in msg and "(2, 1, 3, 3) float32" in msg   # the op's inputs
    assert "--batch-size 128" in msg and "256 samples" in msg
    assert isinstance(err.__cause__.__cause__, FakeCupyOOM)   # chained: layer label <- op's error <- CuPy's
    assert "\n" not in msg


def test_numpy_memory_error_reports_shape_and_dtype(monkeypatch):
    def forward_cpu(self, xs):
        return np.empty((2 ** 40, 2 ** 20), np.float32)   # 4 EiB: NumPy refuses with a MemoryError

    monkeypatch.setattr(conv_module.Conv2d, "forward_cpu", forward_cpu)
    with pytest.raises(OutOfMemoryError) as info:
        small_model()(gpucnn.tensor(np.zeros((4, 1, 8, 8), np.float32)))
    msg = str(info.value)
    assert "conv2d: out of memory" in msg
    assert "for an array of shape (1099511627776, 1048576) float32" in msg
    assert f"{2 ** 40 * 2 ** 20 * 4:,} bytes" in msg
    assert "--batch-size 2" in msg


def test_cuda_library_oom_that_is_not_a_memory_error_is_recognised(monkeypatch):
    _conv_forward_raises(monkeypatch, FakeCudaRuntimeError("cudaErrorMemoryAllocation: out of memory"))
    with pytest.raises(OutOfMemoryError, match=r"conv2d: out of memory .*FakeCudaRuntimeError: "
                                               r"cudaErrorMemoryAllocation"):
        small_model()(gpucnn.tensor(np.zeros((4, 1, 8, 8), np.float32)))


def test_other_errors_are_not_turned_into_oom(monkeypatch, oom_types):
    _conv_forward_raises(monkeypatch, RuntimeError("something else"))
    with pytest.raises(RuntimeError, match="something else") as info:
        small_model()(gpucnn.tensor(np.zeros((4, 1, 8, 8), np.float32)))
    assert not isinstance(info.value, GpucnnError)


def test_memory_error_subclasses_need_no_registration(monkeypatch):
    # a MemoryError subclass is OOM without registration (NumPy's and CuPy's are MemoryErrors) ...
    _conv_forward_raises(monkeypatch, FakeCupyOOM(10, 0))
    with pytest.raises(OutOfMemoryError):
        small_model()(gpucnn.tensor(np.zeros((4, 1, 8, 8), np.float32)))
    # ... and the registry is where CuPy's own class goes on a GPU (imported only on a CuPy device)
    assert MemoryError in memory.OOM_ERRORS


def test_oom_during_training_from_the_cli_is_one_line(monkeypatch, oom_types, tmp_path):
    from cli.main import cli

    x, y = images(64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    _conv_forward_raises(monkeypatch, FakeCupyOOM(2 ** 31, 2 ** 34))
    result = CliRunner().invoke(cli, ["train", "--model", "keras-mnist", "--dataset", str(tmp_path / "d.npz"),
                                      "--batch-size", "32", "--epochs", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in result.output
    assert err.startswith("Error: Conv2d #0 (1->32, 3x3): conv2d: out of memory")
    assert "2,147,483,648 bytes (2.0 GiB)" in err and "--batch-size" in err


# -- kernel compile errors -------------------------------------------------------------------------------
BROKEN_IN_KERNEL = textwrap.dedent("""\
    #include "common.cuh"
    extern "C" __global__ void broken_forward(const T* x, T* y, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] = x[i] * undefined_symbol_xyz;
    }
    """)

BROKEN_AT_FILE_SCOPE = textwrap.dedent("""\
    #include "common.cuh"
    typedef not_a_type_xyz broken_t;
    extern "C" __global__ void broken_forward(const T* x, T* y, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] = x[i];
    }
    """)


@pytest.fixture
def broken_family(tmp_path, monkeypatch):
    """A kernel family ``broken`` whose source is a temporary file (caches cleared before and after)."""
    import gpucnn.kernels as kernels

    def use(source):
        (tmp_path / "broken.cu").write_text(source)
        kernels._module.cache_clear()
        kernels.get_kernel.cache_clear()
        return tmp_path / "broken.cu"

    real = kernels.kernel_path
    monkeypatch.setattr(kernels, "kernel_path", lambda family: tmp_path / f"{family}.cu" if family == "broken"
                        else real(family))
    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(tmp_path / "cache"))
    yield use
    kernels._module.cache_clear()
    kernels.get_kernel.cache_clear()


def test_emu_compile_error_shows_kernel_options_and_compiler_log(broken_family):
    path = broken_family(BROKEN_IN_KERNEL)
    with pytest.raises(KernelError) as info:
        gpucnn.get_device("emu").kernel("broken", "broken_forward", T="float")
    msg = str(info.value)
    assert str(path) in msg                                   # the file
    assert "broken_forward" in msg                            # the kernel
    assert "--std=c++14" in msg and "-I" in msg               # the options
    assert "error:" in msg and "undefined_symbol_xyz" in msg  # the compiler's log, with the failing line
    assert f"{path}:4:" in msg                                # ... pointing at the .cu file's own line 4


def test_emu_compile_error_names_the_requested_kernel_and_defines(broken_family):
    broken_family(BROKEN_AT_FILE_SCOPE)
    with pytest.raises(KernelError) as info:
        gpucnn.get_device("emu").kernel("broken", "broken_forward", T="float")
    msg = str(info.value)
    assert "not_a_type_xyz" in msg
    assert "broken_forward" in msg and "T=float" in msg


def test_cuda_compile_error_message(monkeypatch):
    """The CUDA path (no GPU needed): CuPy's CompileException carries NVRTC's log in get_message()."""
    import gpucnn.kernels as kernels

    class CompileException(Exception):
        def get_message(self):
            return 'broken.cu(4): error: identifier "undefined_symbol_xyz" is undefined'

    class FakeModule:
        def get_function(self, name):
            raise CompileException("compile failed")

    monkeypatch.setattr(kernels, "_module", lambda device, family, defines: FakeModule())
    kernels.get_kernel.cache_clear()
    try:
        with pytest.raises(KernelError) as info:
            kernels.get_kernel("cuda", "pooling", "max_pool2d_forward", (("T", "float"),))
    finally:
        kernels.get_kernel.cache_clear()
    msg = str(info.value)
    assert "'max_pool2d_forward'" in msg and "pooling.cu" in msg and "T=float" in msg
    assert "--std=c++14" in msg
    assert 'identifier "undefined_symbol_xyz" is undefined' in msg


def test_kernel_error_from_the_cli_has_no_traceback_without_debug(broken_family, monkeypatch, tmp_path):
    """A KernelError is a GpucnnError: the CLI prints it without a traceback (its log spans lines)."""
    from cli.main import cli

    broken_family(BROKEN_IN_KERNEL)
    import gpucnn.kernels as kernels
    monkeypatch.setattr(kernels, "kernel_path", lambda family: tmp_path / "broken.cu")   # every family broken
    x, y = images(16)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    result = CliRunner().invoke(cli, ["train", "--model", "keras-mnist", "--dataset", str(tmp_path / "d.npz"),
                                      "--device", "emu", "--epochs", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.output
    assert "undefined_symbol_xyz" in result.stderr
