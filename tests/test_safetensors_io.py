"""safetensors files: PyTorch's names and layouts (torch loads ours with strict=True and we load torch's),
bit-exact round trips of every dtype, models rebuilt from the file alone, and hostile files -> errors."""
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn import ArgumentError, ModelFormatError, nn
from gpucnn.models import build_model, list_models
from gpucnn.safetensors_io import MODEL_KEY, load_state_dict_from, read_file, save_file

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
tnn = torch.nn


def randomise_running_stats(model, seed=0):
    rng = np.random.default_rng(seed)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.data[...] = rng.standard_normal(b.shape)
        elif name.endswith("running_var"):
            b.data[...] = rng.uniform(0.5, 2.0, b.shape)
        elif name.endswith("num_batches_tracked"):
            b.data[...] = 7


# -- the equivalent PyTorch models ------------------------------------------------------------------
class SameConv2d(tnn.Conv2d):
    """Keras's "same" for any stride: total padding max((ceil(n/s) - 1) s + k - n, 0), the extra row and
    column at the bottom/right (PyTorch's padding="same" refuses stride > 1). Same parameters as Conv2d."""

    def forward(self, x):
        pads = []
        for n, k, s in reversed(list(zip(x.shape[2:], self.kernel_size, self.stride))):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(torch.nn.functional.pad(x, pads))


class GlobalAvgPool2d(tnn.Module):
    """Keras's GlobalAveragePooling2D: (N, C, H, W) -> (N, C), one layer as gpucnn's."""

    def forward(self, x):
        return x.mean((2, 3))


def torch_keras_mnist():
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(64 * 7 * 7, 128), tnn.ReLU(), tnn.Linear(128, 10))


def torch_strided_42():
    layers, cin = [], 3
    for cout in (16, 64, 128):
        layers += [SameConv2d(cin, cout, 3, stride=2), tnn.BatchNorm2d(cout), tnn.ReLU()]
        cin = cout
    return tnn.Sequential(*layers, GlobalAvgPool2d(), tnn.Linear(128, 42))


TORCH_MODELS = {"keras-mnist": torch_keras_mnist, "strided-42": torch_strided_42}


def _gpucnn_model(name):
    gpucnn.manual_seed(0)
    model = build_model(name)
    randomise_running_stats(model)
    return model.eval()


def _input(model, n=3, seed=1):
    return np.random.default_rng(seed).standard_normal((n,) + model.input_shape).astype(np.float32)


@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_torch_loads_our_file_strictly_and_computes_the_same(tmp_path, name):
    model = _gpucnn_model(name)
    path = tmp_path / "m.safetensors"
    gpucnn.save(model, path)
    tm = TORCH_MODELS[name]()
    sd = safetensors_torch.load_file(str(path))
    assert all(v.dtype == torch.int64 and v.shape == () for k, v in sd.items() if k.endswith("num_batches_tracked"))
    tm.load_state_dict(sd, strict=True)
    tm.eval()
    x = _input(model)
    with gpucnn.no_grad():
        ours = model(gpucnn.tensor(x)).numpy()
    with torch.no_grad():
        theirs = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_we_load_a_file_torch_wrote(tmp_path, name):
    torch.manual_seed(0)
    tm = TORCH_MODELS[name]()
    for m in tm.modules():  # non-trivial running statistics
        if isinstance(m, tnn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(3)
    tm.eval()
    path = str(tmp_path / "torch.safetensors")
    safetensors_torch.save_file(tm.state_dict(), path)
    model = build_model(name).eval()
    model.load_state_dict(gpucnn.load_state_dict_from(path), strict=True)
    x = _input(model)
    with gpucnn.no_grad():
        ours = model(gpucnn.tensor(x)).numpy()
    with torch.no_grad():
        theirs = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
    # gpucnn.load of a weights-only file: the state dict, as Tensors
    state = gpucnn.load(path)
    assert list(state) == list(safetensors_torch.load_file(path))
    assert all(isinstance(v, gpucnn.Tensor) for v in state.values())
    with pytest.raises(ModelFormatError, match="weights only.*load_state_dict_from"):
        gpucnn.serialization.load_model(path)


@pytest.mark.parametrize("name", list_models())
def test_every_builtin_model_round_trips_from_the_file_alone(tmp_path, name):
    model = _gpucnn_model(name)
    path = tmp_path / f"{name}.safetensors"
    gpucnn.save(model, path, metadata={"epochs": 2})
    loaded = gpucnn.load(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.name == name and loaded.input_shape == model.input_shape and loaded.metadata == {"epochs": 2}
    assert gpucnn.serialization.load_metadata(path)["epochs"] == 2
    a, b = model.state_dict(), loaded.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    x = gpucnn.tensor(_input(model, 2))
    with gpucnn.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())
    _, metadata = read_file(path)
    assert metadata["format"] == "pt" and json.loads(metadata[MODEL_KEY])["architecture"] == model.to_config()


@pytest.mark.parametrize("dtype", [gpucnn.bfloat16, np.float16, np.float32, np.float64, np.int64, np.int32,
                                   np.int16, np.int8, np.uint8, np.bool_])
def test_every_dtype_round_trips_bit_exactly_and_torch_reads_it(tmp_path, dtype):
    rng = np.random.default_rng(0)
    dtype = np.dtype(dtype)
    # every bit pattern is fair game (NaN payloads, subnormals, -0.0): compare the bits
    raw = rng.integers(0, 256, size=60 * dtype.itemsize, dtype=np.uint8)
    a = (raw % 2).astype(bool) if dtype == np.bool_ else raw.view(dtype)
    a = a.reshape(4, 5, 3)
    tensors = {"a": a, "scalar": a.reshape(-1)[:1].reshape(()), "empty": np.zeros((0, 3), dtype=dtype),
               "strided": a[:, ::2, 1]}
    path = tmp_path / "t.safetensors"
    save_file(tensors, path)
    back, _ = read_file(path)
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
        assert back[k].tobytes() == np.ascontiguousarray(v).tobytes(), k
        back[k][...] = 0  # writable arrays, not views of the file's bytes
    if dtype in (gpucnn.bfloat16, np.float16, np.float32):
        t = safetensors_torch.load_file(str(path))["a"]
        bits = {2: torch.int16, 4: torch.int32}[dtype.itemsize]
        assert tuple(t.shape) == a.shape and t.view(bits).numpy().tobytes() == a.tobytes()
    # and the other way: torch writes bfloat16 bits we read unchanged
    if dtype == gpucnn.bfloat16:
        t = torch.from_numpy(rng.integers(-2 ** 15, 2 ** 15, size=(7, 3), dtype=np.int16)).view(torch.bfloat16)
        safetensors_torch.save_file({"w": t}, str(tmp_path / "bf.safetensors"))
        w = load_state_dict_from(tmp_path / "bf.safetensors")["w"]
        assert w.dtype == gpucnn.bfloat16
        np.testing.assert_array_equal(w.view(np.int16), t.view(torch.int16).numpy())


def test_state_dicts_and_what_safetensors_cannot_hold(tmp_path):
    model = build_model("keras-mnist")
    path = tmp_path / "sd.safetensors"
    gpucnn.save(model.state_dict(), path)
    state = gpucnn.load(path)
    assert set(state) == set(model.state_dict())
    fresh = build_model("keras-mnist")
    fresh.load_state_dict(state, strict=True)
    np.testing.assert_array_equal(fresh[0].weight.numpy(), model[0].weight.numpy())
    with pytest.raises(ArgumentError, match="flat dict.*npz"):
        gpucnn.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "nested.safetensors")
    with pytest.raises(ArgumentError, match="metadata= goes with a model"):
        gpucnn.save(model.state_dict(), path, metadata={"a": 1})
    with pytest.raises(ArgumentError, match="'x'.*cannot hold dtype complex128"):
        save_file({"x": np.zeros(2, dtype=complex)}, path)
    assert set(gpucnn.load(path)) == set(model.state_dict())  # the failed writes left the file as it was
    with pytest.raises(ArgumentError, match="names must be non-empty strings"):
        save_file({"__metadata__": np.zeros(2)}, path)


def test_strict_load_lists_every_offending_name_and_shape(tmp_path):
    path = tmp_path / "w.safetensors"
    sd = {k: v.numpy() for k, v in build_model("keras-mnist").state_dict().items()}
    sd["extra.weight"] = np.zeros(3, np.float32)
    del sd["9.bias"]
    sd["7.weight"] = np.zeros((128, 100), np.float32)
    save_file(sd, path)
    with pytest.raises(ModelFormatError) as e:
        build_model("keras-mnist").load_state_dict(gpucnn.load_state_dict_from(path), strict=True)
    msg = str(e.value)
    assert "9.bias" in msg and "extra.weight" in msg and "7.weight" in msg and "(128, 100)" in msg and "(128, 3136)" in msg


def test_pickles_are_refused_pointing_at_safetensors(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(tnn.Linear(2, 2).state_dict(), path)
    for fn in (gpucnn.load, gpucnn.serialization.load_model, load_state_dict_from,
               gpucnn.serialization.read_model_meta):
        with pytest.raises(ModelFormatError, match=r"model\.pt: a \.pt/\.pth file from PyTorch is a Python pickle.*"
                                                   r"safetensors\.torch\.save_file"):
            fn(path)
    path.rename(tmp_path / "model.pth")
    with pytest.raises(ModelFormatError, match="pickle"):
        gpucnn.load(tmp_path / "model.pth")
    # gpucnn's own archive under a PyTorch-style name is no pickle: it loads
    model = build_model("keras-mnist")
    gpucnn.save(model.state_dict(), tmp_path / "ckpt.pt")
    assert set(gpucnn.load(tmp_path / "ckpt.pt")) == set(model.state_dict())
    assert set(load_state_dict_from(tmp_path / "ckpt.pt")) == set(model.state_dict())
    gpucnn.save(model, tmp_path / "m.npz")
    assert set(load_state_dict_from(tmp_path / "m.npz")) == set(model.state_dict())


# -- hostile and damaged files ------------------------------------------------------------------------
def _file(path, header, data=b"", length=None):
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


HOSTILE = {
    "empty": (b"", None, b""),
    "header length past the end": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, 10 ** 6, b"\0" * 4),
    "huge header length": ({}, 2 ** 63, b""),
    "overlapping offsets": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, None, b"\0" * 12),
    "offsets past the end": ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, None, b"\0" * 8),
    "a hole": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, None, b"\0" * 8),
    "shape and size disagree": ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, None, b"\0" * 8),
    "dtype unknown to everyone": ({"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}, None, b"\0" * 4),
    "header not JSON": (b"{not json", None, b""),
    "header a list": (b"[1, 2]", None, b""),
    "negative shape": ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, None, b"\0" * 4),
    "gpucnn metadata not JSON": ({"__metadata__": {MODEL_KEY: "{oops"}}, None, b""),
    "gpucnn architecture unknown": ({"__metadata__": {MODEL_KEY: json.dumps(
        {"format": "gpucnn-model", "version": 1, "architecture": {"type": "Conv9d"}})}}, None, b""),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_give_a_clear_error(tmp_path, case):
    header, length, data = HOSTILE[case]
    path = tmp_path / "bad.safetensors"
    if header == b"":
        path.write_bytes(b"")
    else:
        _file(path, header, data, length)
    with pytest.raises(ModelFormatError, match=r"bad\.safetensors"):
        gpucnn.load(path)


def test_a_dtype_gpucnn_cannot_hold_is_named(tmp_path):
    path = _file(tmp_path / "f8.safetensors", {"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}},
                 b"\0\0")
    with pytest.raises(ModelFormatError, match="tensor 'w' has dtype F8_E4M3"):
        load_state_dict_from(path)


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        gpucnn.load(tmp_path / "none.safetensors")
    (tmp_path / "d.safetensors").mkdir()
    with pytest.raises(ModelFormatError, match="is a directory"):
        load_state_dict_from(tmp_path / "d.safetensors")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_bytes_never_crash(tmp_path, data):
    path = tmp_path / "ok.safetensors"
    if not path.exists():
        gpucnn.save(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), path)
    good = path.read_bytes()
    raw = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(raw[:cut]))
    try:
        gpucnn.load(bad)
    except ModelFormatError as e:
        assert "bad.safetensors" in str(e)
