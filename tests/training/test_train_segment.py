"""Trainer(task="segment"): per-pixel targets, pixel accuracy and IoU per epoch, the task in model.npz,
exact resume; the classification task reports as before."""
import json

import numpy as np
import pytest

import gpucnn
from gpucnn import ArgumentError, ShapeError
from gpucnn.data import DataLoader
from gpucnn.data.segmentation import SegmentationDataset
from gpucnn.metrics import confusion_matrix, mean_iou, per_class_iou
from gpucnn.models import UNet
from gpucnn.serialization import load
from gpucnn.training import Trainer, evaluate


def stripes(n=24, size=8, seed=0):
    """Images whose mask is a function of the pixel: class 1 where the red channel is bright, 2 where the
    green one is, else 0 -- learnable by a 1x1 conv, with every class present."""
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, 3, (n, size, size))
    images = rng.uniform(0, 60, (n, 3, size, size))
    images[:, 0][masks == 1] += 180
    images[:, 1][masks == 2] += 180
    return SegmentationDataset(images.astype(np.uint8), masks, ["bg", "red", "green"], name="stripes")


def model():
    gpucnn.manual_seed(0)
    return UNet(in_channels=3, num_classes=3, base_channels=4)


def trainer(out=None, epochs=2, n=24, **kw):
    m = model()
    opt = gpucnn.optim.Adam(m.parameters(), lr=0.03)
    train = DataLoader(stripes(n), batch_size=8, shuffle=True, seed=0)
    return Trainer(m, opt, train, stripes(12, seed=1), epochs=epochs, out_dir=out, verbose=0, task="segment",
                   test_data=stripes(12, seed=2), **kw)


def test_evaluate_counts_pixels_and_iou():
    m = model()
    data = stripes(10, seed=3)
    result = evaluate(m, data, task="segment", batch_size=4)
    m.eval()
    with gpucnn.no_grad():
        pred = m(gpucnn.tensor(data.images.astype(np.float32) / 255)).numpy().argmax(axis=1)
    cm = confusion_matrix(data.masks, pred, 3)
    assert result["images"] == 10 and result["pixels"] == 10 * 64
    assert result["correct"] == int(np.trace(cm))
    assert result["accuracy"] == result["pixel_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    np.testing.assert_array_equal(result["confusion"], cm)
    assert result["mean_iou"] == pytest.approx(mean_iou(cm))
    np.testing.assert_allclose(result["iou"], per_class_iou(cm), equal_nan=True)


def test_training_reports_pixel_accuracy_and_iou(tmp_path):
    t = trainer(tmp_path / "run", epochs=4, n=160)
    h = t.fit()
    per_class = [f"{p}iou_{c}" for p in ("", "val_") for c in ("bg", "red", "green")]
    assert set(h) >= {"miou", "val_miou", *per_class} and all(len(h[k]) == 4 for k in per_class)
    assert all(0 <= a <= 1 for a in h["accuracy"])  # (per-pixel hits over images would exceed 1)
    # the classes follow a per-pixel colour rule, quick to learn (0.99 here); one class everywhere scores
    # about 1/9 (its IoU ~1/3 averaged with two zeros)
    assert h["val_miou"][-1] > 0.8
    assert h["val_miou"][-1] == pytest.approx(np.mean([h[f"val_iou_{c}"][-1] for c in ("bg", "red", "green")]))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "segment"
    assert metrics["test"]["pixels"] == 12 * 64 and 0 < metrics["test"]["mean_iou"] <= 1
    assert len(metrics["test"]["iou"]) == 3
    saved = load(tmp_path / "run" / "model.npz")
    assert saved.metadata["task"] == "segment" and saved.metadata["test_miou"] == metrics["test"]["mean_iou"]


def test_resume_continues_exactly(tmp_path):
    full = trainer(tmp_path / "a", epochs=2)
    full.fit()
    part = trainer(tmp_path / "b", epochs=2)
    part.fit(until_epoch=1)
    again = trainer(tmp_path / "b", epochs=2).load_checkpoint(tmp_path / "b")
    assert again.epoch == 1 and len(again.history["miou"]) == 1 and len(again.history["val_iou_red"]) == 1
    again.fit()
    for (k, a), b in zip(full.model.state_dict().items(), again.model.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert {k: v for k, v in again.history.items() if k != "time" and k != "images_per_sec"} == \
        {k: v for k, v in full.history.items() if k != "time" and k != "images_per_sec"}


def test_classification_history_is_unchanged():
    x = np.random.default_rng(0).uniform(0, 1, (16, 1, 4, 4)).astype(np.float32)
    y = np.arange(16) % 2
    m = gpucnn.nn.Sequential(gpucnn.nn.Flatten(), gpucnn.nn.Linear(16, 2))
    t = Trainer(m, gpucnn.optim.SGD(m.parameters(), lr=0.1), (x, y), epochs=1, verbose=0)
    h = t.fit()
    assert set(h) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "images_per_sec",
                      "skipped_steps"}
    assert 0 <= h["accuracy"][0] <= 1


def test_segment_needs_per_pixel_logits_and_a_known_task():
    m = gpucnn.nn.Sequential(gpucnn.nn.Flatten(), gpucnn.nn.Linear(3 * 64, 3))
    t = Trainer(m, gpucnn.optim.SGD(m.parameters(), lr=0.1), stripes(), verbose=0, task="segment")
    with pytest.raises(ShapeError, match=r"segmentation model \(--task segment\) must output per-pixel logits "
                                         r"\(N, classes, 8, 8\)"):
        t.fit()
    with pytest.raises(ShapeError, match="for per-pixel logits train with --task segment"):
        unet = model()
        Trainer(unet, gpucnn.optim.SGD(unet.parameters(), lr=0.1), stripes(), verbose=0).fit()
    with pytest.raises(ArgumentError, match="task must be one of classify, segment, sequence, got 'detect'"):
        Trainer(m, gpucnn.optim.SGD(m.parameters(), lr=0.1), stripes(), task="detect")
