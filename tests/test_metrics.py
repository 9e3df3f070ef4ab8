"""gpucnn.metrics: confusion matrix, pixel accuracy and IoU, checked against scikit-learn and worked examples."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import jaccard_score

import gpucnn
from gpucnn.errors import ArgumentError, ShapeError
from gpucnn.metrics import ConfusionMatrix, confusion_matrix, mean_iou, per_class_iou, pixel_accuracy


def test_worked_example():
    target = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    m = confusion_matrix(target, pred, 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert pixel_accuracy(m) == 4 / 6
    # class 0: inter 1, union 2 + 2 - 1 = 3; class 1: 2 / 3; class 2: 1 / 2
    np.testing.assert_allclose(per_class_iou(m), [1 / 3, 2 / 3, 1 / 2], rtol=1e-15)
    assert mean_iou(m) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3, rel=1e-15)


def test_matches_scikit_learn_over_batches():
    rng = np.random.default_rng(0)
    k = 5
    acc = ConfusionMatrix(k)
    all_t, all_p = [], []
    for _ in range(4):
        t = rng.integers(0, k, size=(3, 7, 6))
        logits = rng.standard_normal((3, k, 7, 6))
        logits[:, 0] += (t == 0) * 1.5  # some signal, so the matrix is not uniform
        acc.update(gpucnn.tensor(logits), gpucnn.tensor(t))
        all_t.append(t.ravel())
        all_p.append(logits.argmax(axis=1).ravel())
    t, p = np.concatenate(all_t), np.concatenate(all_p)
    np.testing.assert_array_equal(acc.matrix, sk_confusion(t, p, labels=range(k)))
    np.testing.assert_allclose(acc.iou(), jaccard_score(t, p, average=None, labels=range(k)), rtol=1e-12)
    assert acc.pixel_accuracy() == pytest.approx(np.mean(t == p), rel=1e-12)
    assert acc.mean_iou() == pytest.approx(jaccard_score(t, p, average="macro", labels=range(k)), rel=1e-12)
    out = acc.compute()
    assert set(out) == {"pixel_accuracy", "mean_iou", "iou"} and len(out["iou"]) == k
    json.dumps(out)
    restored = ConfusionMatrix(k)
    restored.load_state_dict(json.loads(json.dumps(acc.state_dict())))
    np.testing.assert_array_equal(restored.matrix, acc.matrix)
    acc.reset()
    assert acc.matrix.sum() == 0 and np.isnan(acc.pixel_accuracy()) and np.isnan(acc.mean_iou())


def test_absent_class_is_nan_and_left_out_of_the_mean():
    t = np.array([0, 0, 1, 1])
    p = np.array([0, 1, 1, 1])
    m = confusion_matrix(t, p, 3)  # class 2 in neither
    iou = per_class_iou(m)
    assert iou[:2].tolist() == [0.5, 2 / 3] and np.isnan(iou[2])
    assert mean_iou(m) == pytest.approx((0.5 + 2 / 3) / 2)
    # predicted but never true: IoU 0, and it counts
    assert per_class_iou(confusion_matrix(np.array([0, 0]), np.array([0, 2]), 3))[2] == 0.0


def test_ignore_index_and_class_maps_as_output():
    t = np.array([[0, 255, 1], [1, 1, 255]])
    p = np.array([[0, 0, 1], [0, 1, 1]])
    acc = ConfusionMatrix(2, ignore_index=255).update(p, t)
    np.testing.assert_array_equal(acc.matrix, [[1, 0], [1, 2]])


def test_bad_input():
    with pytest.raises(ArgumentError, match=r"target holds class id 3, outside \[0, 3\)"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ArgumentError, match="prediction holds class id -1"):
        confusion_matrix(np.array([0, 1]), np.array([0, -1]), 3)
    with pytest.raises(ShapeError, match=r"target has shape \(2,\) but prediction \(3,\)"):
        confusion_matrix(np.zeros(2, int), np.zeros(3, int), 2)
    with pytest.raises(ArgumentError, match="integer class ids, got dtype float64"):
        confusion_matrix(np.zeros(2), np.zeros(2, int), 2)
    with pytest.raises(ArgumentError, match="num_classes must be an int >= 1, got 0"):
        ConfusionMatrix(0)
    with pytest.raises(ShapeError, match="output has 4 class scores per pixel"):
        ConfusionMatrix(3).update(np.zeros((1, 4, 2, 2)), np.zeros((1, 2, 2), int))
    with pytest.raises(ShapeError, match="does not match target shape"):
        ConfusionMatrix(3).update(np.zeros((1, 3, 2, 2)), np.zeros((1, 2, 3), int))
    with pytest.raises(ArgumentError, match="state is for 2 classes"):
        ConfusionMatrix(3).load_state_dict(ConfusionMatrix(2).state_dict())


@pytest.mark.skipif(not gpucnn.cuda_available(), reason="needs a CUDA GPU (CuPy)")
@pytest.mark.cuda
def test_cuda_arrays_count_like_numpy():
    rng = np.random.default_rng(2)
    t = rng.integers(0, 4, size=(2, 5, 5))
    logits = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    on_gpu = ConfusionMatrix(4).update(gpucnn.tensor(logits, device="cuda"), gpucnn.tensor(t, device="cuda"))
    np.testing.assert_array_equal(on_gpu.matrix, ConfusionMatrix(4).update(logits, t).matrix)
