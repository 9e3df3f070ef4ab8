"""Fuzzing the readers of files from elsewhere that the other suites do not fuzz: training checkpoints
(the reader and a whole ``--resume``), image folders and model description files (JSON/TOML).

Any bytes give either a valid result or our own error type (for checkpoints: ModelFormatError or
TrainingError naming the file), never another exception. The number of cases per target is
``max_examples`` below (``docs/reliability.md`` adds them up with the other suites' fuzzers).
"""
from __future__ import annotations

import io
import json
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn import nn
from gpucnn.data import ArrayDataset, Compose, DataLoader, RandomCrop, ToFloat
from gpucnn.errors import DataError, GpucnnError, ModelFormatError, TrainingError
from gpucnn.optim import Adam, lr_scheduler
from gpucnn.serialization import read_archive, write_archive
from gpucnn.training import RunConfig, Trainer, load_checkpoint

#: cases per fuzz target
EXAMPLES = {"checkpoint_bytes": 200, "checkpoint_meta": 200, "checkpoint_restore": 150, "resume_run_config": 100,
            "image_folder": 200, "model_spec": 200}

JSON = st.recursive(st.none() | st.booleans() | st.integers(-10 ** 20, 10 ** 20) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
JSON_TEXT_KEYS = ("loader", "rng", "history", "config", "early_stopping", "extra")


def fuzz_settings(target):
    return settings(max_examples=EXAMPLES[target], deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


def make_images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, 1, 8, 8)).astype(np.uint8), rng.integers(0, 3, n).astype(np.int64)


def make_trainer(out_dir, epochs=2):
    gpucnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding="same"), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.25), nn.Linear(32, 3))
    opt = Adam(model.parameters(), lr=0.01)
    loader = DataLoader(ArrayDataset(*make_images(32)), batch_size=8, shuffle=True, seed=1,
                        transform=Compose([RandomCrop(8, padding=1), ToFloat()]))
    return Trainer(model, opt, loader, ArrayDataset(*make_images(16, 1)), epochs=epochs, out_dir=out_dir,
                   scheduler=lr_scheduler.StepLR(opt, 1, 0.5), patience=3, eval_transform=ToFloat(), verbose=0)


def _good_checkpoint() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        make_trainer(os.path.join(d, "run"), epochs=1).fit()
        with open(os.path.join(d, "run", "checkpoint.npz"), "rb") as f:
            return f.read()


GOOD = _good_checkpoint()


def mutate_tree(data, root, depth=7):
    """Replace one place in the JSON tree ``root`` (or add a key/item there) with an arbitrary JSON value."""
    node, key = root, None
    for _ in range(data.draw(st.integers(0, depth))):
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            key = data.draw(st.integers(0, len(node) - 1))
        else:
            break
        if isinstance(node[key], (dict, list)) and data.draw(st.booleans()):
            node, key = node[key], None
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


def mutated_checkpoint(data, directory, start_at_run_config=False):
    """GOOD with its meta document (including the JSON-text entries) mutated; None if it cannot be written."""
    src = os.path.join(directory, "checkpoint.npz")
    with open(src, "wb") as f:
        f.write(GOOD)
    arrays, meta = read_archive(src)
    state = meta["state"]
    for k in JSON_TEXT_KEYS:
        if isinstance(state.get(k), str):
            state[k] = json.loads(state[k])
    root = state["config"]["run_config"] if start_at_run_config and isinstance(state["config"], dict) \
        and isinstance(state["config"].get("run_config"), dict) else meta
    mutate_tree(data, root)
    for k in JSON_TEXT_KEYS:
        if k in state and not isinstance(state[k], str) and data.draw(st.integers(0, 9)) > 0:
            state[k] = json.dumps(state[k])      # usually re-encoded as the writer does; sometimes not
    if arrays and data.draw(st.booleans()):
        name = data.draw(st.sampled_from(sorted(arrays)))
        arrays[name] = data.draw(st.sampled_from([np.zeros(2, np.float32), arrays[name].astype(np.float64),
                                                  np.zeros((), np.int64), arrays[name].reshape(-1)[:1]]))
    try:
        write_archive(src, arrays, meta)
    except GpucnnError:
        return None
    return src


def expect_checkpoint_error(call, path):
    """``call()`` succeeds, or raises ModelFormatError/TrainingError naming ``path``."""
    try:
        call()
    except (ModelFormatError, TrainingError) as exc:
        assert str(path) in str(exc), str(exc)


# -- checkpoints: the reader ------------------------------------------------------------------------------
@fuzz_settings("checkpoint_bytes")
@given(st.one_of(
    st.tuples(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=8),
              st.integers(0, len(GOOD)), st.booleans()),
    st.binary(max_size=2000).map(lambda b: ([], None, b)),
    st.binary(max_size=200).map(lambda b: ([], None, b"PK\x03\x04" + b))))
def test_fuzz_checkpoint_bytes(case):
    """Flipped bytes, truncations, random bytes: the reader and a restore into a matching Trainer."""
    edits, cut, raw = case
    if isinstance(raw, bytes):
        blob = raw
    else:
        blob = bytearray(GOOD)
        for pos, value in edits:
            blob[pos] = value
        blob = bytes(blob[:cut] if raw else blob)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "checkpoint.npz")
        with open(path, "wb") as f:
            f.write(blob)
        expect_checkpoint_error(lambda: load_checkpoint(path), path)
        expect_checkpoint_error(lambda: make_trainer(None, epochs=3).load_checkpoint(path), path)


@fuzz_settings("checkpoint_meta")
@given(st.data())
def test_fuzz_checkpoint_meta(data):
    """Well-formed archives with an edited meta document (zip corruption is caught by CRCs already)."""
    with tempfile.TemporaryDirectory() as d:
        path = mutated_checkpoint(data, d)
        if path is not None:
            expect_checkpoint_error(lambda: load_checkpoint(path), path)


@fuzz_settings("checkpoint_restore")
@given(st.data())
def test_fuzz_checkpoint_restore_and_continue(data):
    """A checkpoint that loads must also restore into the run and train on (or fail with our error)."""
    with tempfile.TemporaryDirectory() as d:
        path = mutated_checkpoint(data, d)
        if path is None:
            return
        trainer = make_trainer(None, epochs=2)

        def restore_and_train():
            trainer.load_checkpoint(path)
            trainer.fit()

        try:
            restore_and_train()
        except (ModelFormatError, TrainingError) as exc:
            assert str(path) in str(exc) or isinstance(exc, TrainingError), str(exc)
        except GpucnnError:
            pass  # e.g. a valid-looking but non-finite learning rate: training then reports it itself


# -- checkpoints: a whole --resume (the run is rebuilt from the RunConfig stored in the checkpoint) --------
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzzrun")
    np.savez(d / "d.npz", x=make_images(40)[0], y=make_images(40)[1])
    spec = {"format": "gpucnn-model-spec", "version": 1, "input_shape": [1, 8, 8], "layers": [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": "same"},
        {"type": "ReLU"}, {"type": "Flatten"}, {"type": "Linear", "in_features": 128, "out_features": 3}]}
    (d / "m.json").write_text(json.dumps(spec))
    cfg = RunConfig(model=str(d / "m.json"), dataset=str(d / "d.npz"), epochs=2, batch_size=8, optimizer="adam",
                    lr=0.01, schedule="step", augment=True)
    Trainer.from_config(cfg, out_dir=d / "run", verbose=0).fit(until_epoch=1)
    return (d / "run" / "checkpoint.npz").read_bytes()


@fuzz_settings("resume_run_config")
@given(data=st.data())
def test_fuzz_resume_with_an_edited_run_config(cli_run, data):
    global GOOD
    saved, GOOD = GOOD, cli_run
    try:
        with tempfile.TemporaryDirectory() as d:
            path = mutated_checkpoint(data, d, start_at_run_config=data.draw(st.booleans()))
            if path is None:
                return
            try:
                Trainer.resume(d, verbose=0)
            except (ModelFormatError, TrainingError) as exc:
                assert d in str(exc), str(exc)
            except GpucnnError:
                pass  # an edited but well-formed config (another dataset path, ...) fails as that run would
    finally:
        GOOD = saved


# -- image folders ----------------------------------------------------------------------------------------
def _encoded(fmt, array):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


IMAGES = {".png": _encoded("PNG", np.arange(64, dtype=np.uint8).reshape(8, 8)),
          ".jpg": _encoded("JPEG", np.zeros((8, 8, 3), np.uint8)),
          ".gif": _encoded("GIF", np.zeros((8, 8), np.uint8)),
          ".bmp": _encoded("BMP", np.full((8, 8), 7, np.uint8))}


def _mutations(good):
    return st.tuples(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=8),
                     st.integers(0, len(good)), st.booleans()).map(lambda t: _apply(good, *t))


def _apply(good, edits, cut, truncate):
    blob = bytearray(good)
    for pos, value in edits:
        blob[pos] = value
    return bytes(blob[:cut] if truncate else blob)


@fuzz_settings("image_folder")
@given(st.sampled_from(sorted(IMAGES)).flatmap(
    lambda suffix: st.tuples(st.just(suffix), st.one_of(_mutations(IMAGES[suffix]), st.binary(max_size=300)))),
    st.booleans())
def test_fuzz_image_folder(case, sized):
    from gpucnn.data.image_folder import load_image_folder

    suffix, blob = case
    with tempfile.TemporaryDirectory() as d:
        for cls in ("a", "b"):
            os.makedirs(os.path.join(d, cls))
        with open(os.path.join(d, "a", "x" + suffix), "wb") as f:
            f.write(blob)
        with open(os.path.join(d, "b", "y.png"), "wb") as f:
            f.write(IMAGES[".png"])
        try:
            ds = load_image_folder(d, size=(8, 8) if sized else None)
        except DataError as exc:
            assert d in str(exc), str(exc)
        else:
            assert len(ds) == 2 and ds.images.dtype == np.uint8


# -- model description files ------------------------------------------------------------------------------
SPEC = {"format": "gpucnn-model-spec", "version": 1, "name": "tiny", "input_shape": [1, 8, 8], "layers": [
    {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": "same"},
    {"type": "BatchNorm2d", "num_features": 2}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
    {"type": "Flatten"}, {"type": "Dropout", "p": 0.25}, {"type": "Linear", "in_features": 32, "out_features": 3}]}


def _toml(spec):
    """A small TOML writer for SPEC-shaped documents (tomllib only reads). TOML has no null: None is
    written as ``null``, which makes the file invalid TOML -- one more kind of bad input."""
    def value(v):
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"

    layers = spec.get("layers")
    tables = isinstance(layers, list) and all(isinstance(layer, dict) for layer in layers)
    lines = [f"{json.dumps(k)} = {value(v)}" for k, v in spec.items() if not (k == "layers" and tables)]
    for layer in layers if tables else []:
        lines.append("[[layers]]")
        lines += [f"{json.dumps(k)} = {value(v)}" for k, v in layer.items()]
    return "\n".join(lines) + "\n"


@fuzz_settings("model_spec")
@given(st.data())
def test_fuzz_model_spec_files(data):
    from gpucnn.models import build_model

    spec = json.loads(json.dumps(SPEC))
    mutate_tree(data, spec, depth=4)
    suffix = data.draw(st.sampled_from([".json", ".toml"]))
    if suffix == ".json":
        text = json.dumps(spec).encode()
    else:
        text = _toml(spec).encode()
    if data.draw(st.booleans()):
        blob = bytearray(text)
        for pos, value in data.draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255)),
                                             max_size=4)):
            blob[pos] = value
        text = bytes(blob)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m" + suffix)
        with open(path, "wb") as f:
            f.write(text)
        try:
            model = build_model(path)
        except ModelFormatError as exc:
            assert "m" + suffix in str(exc), str(exc)
        else:
            assert isinstance(model, nn.Module)


def test_fuzz_case_counts_are_documented():
    doc = (os.path.dirname(__file__) + "/../../docs/reliability.md")
    text = open(doc, encoding="utf-8").read()
    for target, n in EXAMPLES.items():
        assert f"`{target}` | {n}" in text, target
