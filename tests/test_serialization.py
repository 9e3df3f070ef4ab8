"""save/load and the archive format: round trips, atomic writes, every corruption -> ModelFormatError."""
import io
import json
import os
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn import ArgumentError, ModelFormatError, nn
from gpucnn.models import build_model, list_models
from gpucnn.serialization import (load, load_metadata, pack_state, read_archive, read_model_meta, save, unpack_state,
                                  write_archive)


def randomise_running_stats(model, seed=0):
    rng = np.random.default_rng(seed)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.data[...] = rng.standard_normal(b.shape)
        elif name.endswith("running_var"):
            b.data[...] = rng.uniform(0.5, 2.0, b.shape)
        elif name.endswith("num_batches_tracked"):
            b.data[...] = 7


@pytest.mark.parametrize("name", list_models())
def test_round_trip_every_builtin_model(tmp_path, name):
    gpucnn.manual_seed(0)
    model = build_model(name)
    randomise_running_stats(model)
    path = tmp_path / f"{name}.npz"
    save(model, path, metadata={"epochs": 3, "history": {"loss": [1.0, 0.5]}})
    loaded = load(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.input_shape == model.input_shape and loaded.num_classes == model.num_classes
    assert loaded.name == name and loaded.metadata == {"epochs": 3, "history": {"loss": [1.0, 0.5]}}
    a, b = model.state_dict(), loaded.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    x = gpucnn.tensor(np.random.default_rng(1).standard_normal((2,) + model.input_shape).astype(np.float32))
    model.eval()
    with gpucnn.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())


def test_loading_does_not_consume_random_numbers(tmp_path):
    save(build_model("keras-mnist"), tmp_path / "m.npz")
    gpucnn.manual_seed(5)
    load(tmp_path / "m.npz")
    after_load = build_model("keras-mnist")
    gpucnn.manual_seed(5)
    fresh = build_model("keras-mnist")
    np.testing.assert_array_equal(after_load[0].weight.numpy(), fresh[0].weight.numpy())


def test_classes_dtype_device_and_meta(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
    model.input_shape = (1, 2, 2)
    path = tmp_path / "m.gpucnn"  # any extension: the file is written as given
    save(model, path, metadata={"classes": ["cat", "dog", "fish"]})
    loaded = load(path, device="emu")
    assert loaded.classes == ["cat", "dog", "fish"] and loaded.input_shape == (1, 2, 2)
    assert loaded.dtype == np.float64 and loaded.device == "emu"
    assert isinstance(loaded[1].weight.data, np.ndarray)
    assert load_metadata(path) == {"classes": ["cat", "dog", "fish"], "input_shape": [1, 2, 2], "num_classes": 3}
    meta = read_model_meta(path)
    assert meta["format"] == "gpucnn-model" and meta["version"] == 1 and meta["dtype"] == "float64"
    assert meta["architecture"] == model.to_config()
    with pytest.raises(ArgumentError, match="JSON"):
        save(model, tmp_path / "x.npz", metadata={"f": object()})
    with pytest.raises(ArgumentError, match="register_layer"):
        class Mine(nn.Module):
            def __init__(self, k):
                super().__init__()
        save(Mine(1), tmp_path / "y.npz")


def test_loaded_model_trains(tmp_path):
    model = build_model("strided-42")
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz").train()
    out = loaded(gpucnn.zeros(2, 3, 64, 64)).sum()
    out.backward()
    assert all(p.grad is not None for p in loaded.parameters())


# -- atomic writes -----------------------------------------------------------------------------------
def test_a_failure_while_writing_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    from gpucnn import serialization

    path = tmp_path / "model.npz"
    first = build_model("keras-mnist")
    save(first, path)
    original = path.read_bytes()

    def broken(f, arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(serialization, "_write_npz", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        save(build_model("keras-mnist"), path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left behind
    monkeypatch.undo()

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(ModelFormatError, match="cannot write .*No space left on device"):
        save(build_model("keras-mnist"), path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    np.testing.assert_array_equal(load(path)[0].weight.numpy(), first[0].weight.numpy())


def test_write_archive_fsyncs_file_and_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    write_archive(tmp_path / "a.npz", {"x": np.arange(3)}, {"k": 1})
    assert len(synced) >= 2


def test_unwritable_destination(tmp_path):
    with pytest.raises(ModelFormatError, match="cannot write"):
        write_archive(tmp_path / "missing-dir" / "a.npz", {}, {})


# -- corrupt files -----------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    gpucnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    model.input_shape = (1, 4, 4)
    path = tmp_path / "good.npz"
    save(model, path)
    return path


def rewrite(src, dst, edit_arrays=None, edit_meta=None):
    arrays, meta = read_archive(src)
    if edit_arrays:
        edit_arrays(arrays)
    if edit_meta:
        edit_meta(meta)
    write_archive(dst, arrays, meta)
    return dst


def test_truncated_random_empty_and_missing_files(saved, tmp_path):
    data = saved.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "truncated-end.npz": data[:-10],
        "random.npz": np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "empty.npz": b"",
        "text.npz": b"hello world\n",
    }
    for name, content in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(ModelFormatError, match=name.replace(".", r"\.")):
            load(p)
    with pytest.raises(ModelFormatError, match="no such file"):
        load(tmp_path / "nope.npz")
    with pytest.raises(ModelFormatError, match="is a directory"):
        load(tmp_path)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ModelFormatError, match="single .npy array"):
        load(tmp_path / "single.npy")


def test_missing_extra_and_mismatched_tensors(saved, tmp_path):
    def drop(a):
        del a["4.bias"]

    with pytest.raises(ModelFormatError, match=r"missing 1 tensor: 4\.bias"):
        load(rewrite(saved, tmp_path / "a.npz", drop))

    def add(a):
        a["5.weight"] = np.zeros(3, np.float32)

    with pytest.raises(ModelFormatError, match=r"1 unexpected tensor: 5\.weight"):
        load(rewrite(saved, tmp_path / "b.npz", add))

    def reshape(a):
        a["4.weight"] = np.zeros((3, 9), np.float32)

    with pytest.raises(ModelFormatError,
                       match=r"tensor '4\.weight' has shape \(3, 9\), the architecture needs \(3, 8\)"):
        load(rewrite(saved, tmp_path / "c.npz", reshape))

    def retype(a):
        a["0.weight"] = a["0.weight"].astype(np.float64)

    with pytest.raises(ModelFormatError, match=r"tensor '0\.weight' has dtype float64, expected float32"):
        load(rewrite(saved, tmp_path / "d.npz", retype))


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["architecture"]["layers"].__setitem__(1, {"type": "BatchNorm3d", "num_features": 2}),
     r"architecture: layers\[1\]: unknown layer type 'BatchNorm3d'"),
    (lambda m: m["architecture"]["layers"][0].__setitem__("kernal_size", 3),
     r"architecture: layers\[0\] \(Conv2d\): unknown argument 'kernal_size'"),
    (lambda m: m.__setitem__("version", 2),
     r"good2\.npz was written by a newer gpucnn \(format version 2; this gpucnn reads up to 1\); upgrade gpucnn"),
    (lambda m: m.__setitem__("version", "1"), r"invalid format version '1'"),
    (lambda m: m.__setitem__("format", "something-else"), r"not a gpucnn model file \(format 'something-else'"),
    (lambda m: m.pop("architecture"), r"'architecture' entry is missing"),
    (lambda m: m.__setitem__("dtype", "int8"), r"'dtype' must be"),
    (lambda m: m.__setitem__("input_shape", [1, -4]), r"'input_shape' must be"),
    (lambda m: m["architecture"]["layers"][4].__setitem__("in_features", 10 ** 12),
     r"needs more parameter values than the file stores"),
    (lambda m: m["architecture"]["layers"][0].__setitem__("out_channels", -1),
     r"layers\[0\] \(Conv2d\): Conv2d: out_channels must be an integer >= 1, got -1"),
])
def test_bad_meta_documents(saved, tmp_path, edit, message):
    path = rewrite(saved, tmp_path / "good2.npz", edit_meta=edit)
    with pytest.raises(ModelFormatError, match=message):
        load(path)


def test_meta_problems_in_the_zip(saved, tmp_path):
    arrays, meta = read_archive(saved)
    # no __meta__ at all
    np.savez(tmp_path / "nometa.npz", **arrays)
    with pytest.raises(ModelFormatError, match="missing the '__meta__' entry"):
        load(tmp_path / "nometa.npz")
    # __meta__ that is not JSON
    np.savez(tmp_path / "badjson.npz", __meta__=np.frombuffer(b"{not json", np.uint8), **arrays)
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load(tmp_path / "badjson.npz")
    np.savez(tmp_path / "list.npz", __meta__=np.frombuffer(b"[1, 2]", np.uint8), **arrays)
    with pytest.raises(ModelFormatError, match="must be a JSON object"):
        load(tmp_path / "list.npz")
    np.savez(tmp_path / "floatmeta.npz", __meta__=np.zeros(3), **arrays)
    with pytest.raises(ModelFormatError, match="not a JSON document"):
        load(tmp_path / "floatmeta.npz")


def test_pickled_object_arrays_are_refused(saved, tmp_path):
    arrays, meta = read_archive(saved)
    evil = np.empty(1, dtype=object)
    evil[0] = {"run": "code"}
    np.savez(tmp_path / "pickled.npz", __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             evil=evil, **arrays)
    with pytest.raises(ModelFormatError, match=r"pickled\.npz: entry 'evil' is an object array \(pickled data\)"):
        load(tmp_path / "pickled.npz")
    with pytest.raises(ArgumentError, match="numeric"):
        write_archive(tmp_path / "o.npz", {"o": evil}, {})


# -- fuzzing: only ModelFormatError, ever ----------------------------------------------------------------
def _small_model_bytes():
    gpucnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.npz")
        save(model, p)
        with open(p, "rb") as f:
            return f.read()


GOOD = _small_model_bytes()


def _load_bytes(data):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "fuzz.npz")
        with open(p, "wb") as f:
            f.write(data)
        try:
            load(p)
        except ModelFormatError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=3000), st.binary(max_size=64).map(lambda b: b"PK\x03\x04" + b)))
def test_fuzz_load_arbitrary_bytes(data):
    _load_bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(GOOD)), st.booleans())
def test_fuzz_load_mutated_valid_files(edits, cut, truncate):
    data = bytearray(GOOD)
    for pos, value in edits:
        data[pos] = value
    if truncate:
        data = data[:cut]
    _load_bytes(bytes(data))


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10 ** 20, 10 ** 20) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_load_valid_zips_with_mutated_meta(data):
    """Zip-level corruption is caught by CRCs; this fuzzes what is inside a well-formed archive."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "m.npz")
        with open(src, "wb") as f:
            f.write(GOOD)
        arrays, meta = read_archive(src)
        # pick a place in the meta tree and replace it with an arbitrary JSON value
        node, key = meta, None
        for _ in range(data.draw(st.integers(0, 5))):
            if isinstance(node, dict) and node:
                key = data.draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                key = data.draw(st.integers(0, len(node) - 1))
            else:
                break
            if isinstance(node[key], (dict, list)) and data.draw(st.booleans()):
                node = node[key]
                key = None
            else:
                break
        value = data.draw(JSON)
        if key is None:
            if isinstance(node, dict):
                node[data.draw(st.text(max_size=12))] = value
            elif isinstance(node, list):
                node.append(value)
        else:
            node[key] = value
        if data.draw(st.booleans()) and arrays:
            name = data.draw(st.sampled_from(sorted(arrays)))
            arrays[name] = data.draw(st.sampled_from([np.zeros(2, np.float32), arrays[name].astype(np.float64),
                                                      np.zeros((), np.int64), arrays[name].reshape(-1)[:1]]))
        dst = os.path.join(d, "mutated.npz")
        try:
            write_archive(dst, arrays, meta)
        except ArgumentError:
            return
        try:
            load(dst)
        except ModelFormatError:
            pass


# -- archives and nested state (checkpoints) -------------------------------------------------------------
def test_archive_round_trip(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b/c": np.float32(1.5) * np.ones(2, np.float32),
              "flag": np.array([True, False]), "file": np.zeros(1), "allow_pickle": np.ones(1),
              "x.npy": np.arange(3), "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
    meta = {"x": [1, 2.5, "s", None, True], "nested": {"inf": float("inf")}}
    write_archive(tmp_path / "a.npz", arrays, meta)
    got, got_meta = read_archive(tmp_path / "a.npz")
    assert set(got) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
        assert got[k].dtype == arrays[k].dtype
    assert got_meta == meta
    with pytest.raises(ArgumentError, match="reserved"):
        write_archive(tmp_path / "b.npz", {"__meta__": np.zeros(1)}, {})
    with pytest.raises(ArgumentError, match="JSON"):
        write_archive(tmp_path / "b.npz", {}, {"x": {1, 2}})


def test_pack_state_round_trip(tmp_path):
    w = gpucnn.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    tree = {
        "optimizer": {"name": "adam", "lr": 1e-3, "betas": (0.9, 0.999), "step": 10,
                      "state": {0: {"exp_avg": np.zeros(3, np.float32), "exp_avg_sq": np.ones(3)}}},
        "model": {"0.weight": w},
        "rng": gpucnn.get_rng_state(),
        "scalar": np.float32(2.5),
        "list": [1, None, "x", [np.arange(2)]],
        "weird": {"__array__": "not a reference", (1, "a"): 2},
        "nan": float("nan"),
    }
    meta_tree, arrays = pack_state(tree)
    json.dumps(meta_tree)
    write_archive(tmp_path / "ckpt.npz", arrays, {"state": meta_tree})
    arrays2, meta = read_archive(tmp_path / "ckpt.npz")
    out = unpack_state(meta["state"], arrays2)
    assert out["optimizer"]["betas"] == (0.9, 0.999) and out["optimizer"]["step"] == 10
    assert list(out["optimizer"]["state"]) == [0]
    np.testing.assert_array_equal(out["optimizer"]["state"][0]["exp_avg_sq"], np.ones(3))
    assert out["optimizer"]["state"][0]["exp_avg"].dtype == np.float32
    t = out["model"]["0.weight"]
    assert isinstance(t, gpucnn.Tensor) and t.requires_grad and t.shape == (2, 2)
    assert out["rng"] == gpucnn.get_rng_state()
    assert out["scalar"] == np.float32(2.5) and isinstance(out["scalar"], np.float32)
    assert out["list"][:3] == [1, None, "x"]
    np.testing.assert_array_equal(out["list"][3][0], np.arange(2))
    assert out["weird"] == {"__array__": "not a reference", (1, "a"): 2}
    assert np.isnan(out["nan"])
    with pytest.raises(ArgumentError, match=r"cannot store a set \(at state\['x'\]\)"):
        pack_state({"x": {1}})
    with pytest.raises(ModelFormatError, match="not in the file"):
        unpack_state({"__array__": "t99"}, {})


def test_npz_written_is_a_plain_zip(saved):
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as z:
        assert "__meta__.npy" in z.namelist()


# -- gpucnn.save / gpucnn.load of state trees (torch.save / torch.load of state_dicts) ----------------------
def structure(tree):
    """The shape of a tree: container types, keys and leaf kinds (tensors as "tensor", whatever the library)."""
    import torch

    if isinstance(tree, dict):
        return {k: structure(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree).__name__, [structure(v) for v in tree]
    if isinstance(tree, (gpucnn.Tensor, torch.Tensor)):
        return "parameter" if isinstance(tree, (nn.Parameter, torch.nn.Parameter)) else "tensor", tuple(tree.shape)
    return type(tree).__name__, tree


def test_state_trees_round_trip_like_torch_save(tmp_path):
    import torch

    def tree(lib, param):
        return {"model": {"0.weight": lib.ones((2, 3)), "0.bias": lib.zeros(3)}, "epoch": 3, "lr": 0.1,
                "best": float("inf"), "flag": True, "none": None, "name": "résumé", "betas": (0.9, 0.999),
                "history": [1.5, [2, "x"]], 7: "int key", (1, "a"): [param(lib.ones(2))]}

    ours, theirs = tree(gpucnn, nn.Parameter), tree(torch, torch.nn.Parameter)
    save(ours, tmp_path / "s.npz")
    torch.save(theirs, tmp_path / "s.pt")
    got = gpucnn.load(tmp_path / "s.npz")
    assert structure(got) == structure(torch.load(tmp_path / "s.pt")) == structure(theirs)
    assert list(got) == list(ours)  # the order of the keys
    np.testing.assert_array_equal(got["model"]["0.weight"].numpy(), np.ones((2, 3), np.float32))
    assert got["model"]["0.weight"].dtype == np.float32 and got["model"]["0.weight"].device == "cpu"
    assert got[(1, "a")][0].requires_grad and not got["model"]["0.bias"].requires_grad
    # arrays and NumPy scalars come back as NumPy's (torch.load has no NumPy counterpart to compare with)
    save({"a": np.arange(3, dtype=np.int16), "s": np.float32(2.5), "nan": float("nan")}, tmp_path / "n.npz")
    back = load(tmp_path / "n.npz")
    assert back["a"].dtype == np.int16 and type(back["s"]) is np.float32 and np.isnan(back["nan"])
    save(gpucnn.tensor([1, 2]), tmp_path / "t.npz")  # a bare tensor, like torch.save(tensor)
    assert load(tmp_path / "t.npz").tolist() == [1, 2]


def test_load_device_and_map_location(tmp_path):
    save({"w": gpucnn.ones(2), "m": np.zeros(2)}, tmp_path / "s.npz")
    for kwargs in ({"device": "emu"}, {"map_location": "emu"}, {"map_location": gpucnn.get_device("emu")},
                   {"device": "emu", "map_location": "emu"}):
        got = load(tmp_path / "s.npz", **kwargs)
        assert got["w"].device == "emu" and isinstance(got["m"], np.ndarray)
    assert load(tmp_path / "s.npz", "emu")["w"].device == "emu"  # positionally, as torch.load's map_location
    assert load(tmp_path / "s.npz", weights_only=True)["w"].device == "cpu"
    with pytest.raises(ArgumentError, match="map_location must be a device"):
        load(tmp_path / "s.npz", map_location={"cuda:0": "cpu"})
    with pytest.raises(ArgumentError, match="disagree"):
        load(tmp_path / "s.npz", device="cpu", map_location="emu")
    model = nn.Sequential(nn.Linear(2, 2))
    save(model, tmp_path / "m.npz")
    assert load(tmp_path / "m.npz", map_location="emu").device == "emu"  # a model file: still the model


def test_what_save_refuses_and_what_load_model_refuses(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2))
    opt = gpucnn.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ArgumentError, match=r"save: cannot store a SGD \(at state\['opt'\]\); it has a state_dict"):
        save({"opt": opt}, tmp_path / "x.npz")
    with pytest.raises(ArgumentError, match="cannot store a function"):
        save([lambda: 1], tmp_path / "x.npz")
    with pytest.raises(ArgumentError, match="metadata= goes with a model"):
        save(model.state_dict(), tmp_path / "x.npz", metadata={"a": 1})
    assert not (tmp_path / "x.npz").exists()

    class Net(nn.Module):  # not registered: its architecture is not data
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(ArgumentError, match=r"register_layer.*gpucnn\.save\(model\.state_dict\(\), path\)"):
        save(Net(), tmp_path / "x.npz")
    save(model.state_dict(), tmp_path / "sd.npz")
    with pytest.raises(ModelFormatError, match="holds a saved state .* not a model"):
        gpucnn.serialization.load_model(tmp_path / "sd.npz")
    with pytest.raises(ModelFormatError, match="holds a saved state"):
        load_metadata(tmp_path / "sd.npz")
    save(model, tmp_path / "m.npz")
    assert type(gpucnn.serialization.load_model(tmp_path / "m.npz")) is nn.Sequential


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.__setitem__("version", 2), r"newer gpucnn \(format version 2; this gpucnn reads up to 1\)"),
    (lambda m: m.pop("state"), r"no 'state' entry"),
    (lambda m: m.__setitem__("state", {"w": {"__tensor__": "t9"}}), r"s2\.npz: saved state: .* 't9', which is not"),
    (lambda m: m.__setitem__("state", {"__items__": [[1]]}), r"malformed dict"),
])
def test_damaged_state_files(tmp_path, edit, message):
    save({"w": gpucnn.ones(2)}, tmp_path / "s.npz")
    rewrite(tmp_path / "s.npz", tmp_path / "s2.npz", edit_meta=edit)
    with pytest.raises(ModelFormatError, match=message):
        load(tmp_path / "s2.npz")


def make_run(seed):
    """A model with batch-norm statistics and dropout, SGD with momentum and weight decay, a schedule."""
    gpucnn.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.3),
                          nn.Linear(3 * 4 * 4, 4))
    opt = gpucnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True)
    sched = gpucnn.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.8 ** epoch)
    return model, opt, sched


def train_steps(model, opt, sched, steps, start):
    rng = np.random.default_rng(99)
    data = [(rng.standard_normal((4, 1, 6, 6)).astype(np.float32), rng.integers(0, 4, 4)) for _ in range(8)]
    losses = []
    for step in range(start, start + steps):
        x, y = data[step]
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(gpucnn.tensor(x)), gpucnn.tensor(y))
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("make_optimizer", [None, lambda p: gpucnn.optim.Adam(p, lr=0.01, amsgrad=True)],
                         ids=["sgd", "adam"])
def test_save_load_state_dicts_continues_training_exactly(tmp_path, make_optimizer):
    def run(seed):
        model, opt, sched = make_run(seed)
        if make_optimizer is not None:
            opt = make_optimizer(model.parameters())
            sched = gpucnn.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.8 ** epoch)
        return model, opt, sched

    model, opt, sched = run(0)
    whole = train_steps(model, opt, sched, 6, 0)
    expected = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    model, opt, sched = run(0)
    first = train_steps(model, opt, sched, 3, 0)
    gpucnn.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "epoch": 3, "rng": gpucnn.get_rng_state()}, tmp_path / "ckpt.pt")
    del model, opt, sched

    model, opt, sched = run(1)  # fresh objects, other weights and RNG
    ckpt = gpucnn.load(tmp_path / "ckpt.pt")
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    gpucnn.set_rng_state(ckpt["rng"])
    assert ckpt["epoch"] == 3
    rest = train_steps(model, opt, sched, 3, 3)
    assert first + rest == whole  # bit-equal losses
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), expected[k], err_msg=k)  # bit-equal weights and statistics
    assert whole[0] != whole[-1]


@pytest.mark.skipif(os.name != "posix", reason="umask is POSIX")
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_saved_files_respect_the_umask(tmp_path, mask, expected):
    import stat

    old = os.umask(mask)
    try:
        save(nn.Linear(2, 2), tmp_path / "model.npz")
        save(nn.Linear(2, 2).state_dict(), tmp_path / "state.npz")
    finally:
        os.umask(old)
    for name in ("model.npz", "state.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_models_round_trip_bit_exactly(tmp_path, dtype):
    dt = gpucnn.dtypes.as_dtype(dtype)
    model = gpucnn.nn.Sequential(gpucnn.nn.Conv2d(1, 2, 3), gpucnn.nn.BatchNorm2d(2)).to(dtype=dt)
    suffixes = ["safetensors"] + (["npz"] if dtype == "float16" else [])
    for suffix in suffixes:
        path = tmp_path / f"m.{suffix}"
        gpucnn.save(model, path)
        back = gpucnn.load(path)
        for (k, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
            assert a.dtype == b.dtype, k
            assert a.numpy().tobytes() == b.numpy().tobytes(), k
    # load_state_dict takes bfloat16 arrays (NumPy reports their kind as "V", not "f")
    fresh = gpucnn.nn.Sequential(gpucnn.nn.Conv2d(1, 2, 3), gpucnn.nn.BatchNorm2d(2)).to(dtype=dt)
    fresh.load_state_dict({k: v.numpy() for k, v in model.state_dict().items()})
    np.testing.assert_array_equal(fresh[0].weight.numpy().view(np.uint16), model[0].weight.numpy().view(np.uint16))


def test_a_bfloat16_model_is_not_written_to_npz(tmp_path):
    model = gpucnn.nn.Linear(2, 2).bfloat16()
    with pytest.raises(gpucnn.ArgumentError, match="a bfloat16 array cannot go into a .npz archive; save to a "
                                                   ".safetensors path"):
        gpucnn.save(model, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
