"""Module.summary(): Keras-style table, exact parameter counts, output shapes, modes restored."""
import re

import numpy as np
import pytest

import gpucnn
from gpucnn import ArgumentError, nn
from gpucnn.models import build_model


def rows(text):
    """(name, output shape, param count) per table row."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^ (\S+ \(\w+\))\s+(\(.*?\)|\[.*?\])\s+([\d,]+)$", line)
        if m:
            out.append((m.group(1), m.group(2), int(m.group(3).replace(",", ""))))
    return out


def test_keras_mnist_summary():
    model = build_model("keras-mnist")
    text = model.summary()
    assert text.splitlines()[0] == 'Model: "keras-mnist"'
    r = rows(text)
    assert [x[1] for x in r] == ["(None, 32, 28, 28)", "(None, 32, 28, 28)", "(None, 32, 14, 14)",
                                 "(None, 64, 14, 14)", "(None, 64, 14, 14)", "(None, 64, 7, 7)", "(None, 3136)",
                                 "(None, 128)", "(None, 128)", "(None, 10)"]
    assert [x[2] for x in r if x[2]] == [320, 18496, 401536, 1290]
    assert r[0][0] == "0 (Conv2d)" and r[-1][0] == "9 (Linear)"
    assert "Total params: 421,642 (1.61 MB)" in text
    assert "Trainable params: 421,642" in text
    assert "Non-trainable params: 0 (0.00 B)" in text
    assert "Input shape: (None, 1, 28, 28)" in text
    assert "Buffers" not in text
    lines = text.splitlines()
    assert lines[1] == "_" * len(lines[1]) and lines[3] == "=" * len(lines[1])
    assert " Layer (type)" in lines[2] and "Output Shape" in lines[2] and "Param #" in lines[2]
    assert model.num_parameters() == 421642


def test_strided_42_summary_counts_bn_stats_as_non_trainable_params_like_keras():
    model = build_model("strided-42")
    text = model.summary()
    r = rows(text)
    shapes = [x[1] for x in r]
    for s in ("(None, 16, 32, 32)", "(None, 64, 16, 16)", "(None, 128, 8, 8)", "(None, 128)", "(None, 42)"):
        assert s in shapes
    assert shapes[-2:] == ["(None, 128)", "(None, 42)"]
    # BatchNorm rows: 4 * C (gamma, beta, moving mean, moving variance) as in Keras
    assert [x[2] for x in r] == [448, 64, 0, 9280, 256, 0, 73856, 512, 0, 0, 5418]
    assert "Total params: 89,834 (350.91 KB)" in text
    assert "Trainable params: 89,418" in text
    assert "Non-trainable params: 416 (1.62 KB)" in text
    assert "Buffers" not in text
    assert model.num_parameters() == 89418  # PyTorch's count: parameters only


def test_batch_norm_keras_counts():
    """Keras: BatchNormalization(64) has 256 params, 128 of them (moving mean/variance) non-trainable."""
    text = nn.Sequential(nn.BatchNorm2d(64)).summary((64, 2, 2))
    assert rows(text) == [("0 (BatchNorm2d)", "(None, 64, 2, 2)", 256)]
    assert "Total params: 256 (1.00 KB)" in text
    assert "Trainable params: 128 (512.00 B)" in text
    assert "Non-trainable params: 128 (512.00 B)" in text
    text = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).summary((4,))
    assert [x[2] for x in rows(text)] == [15, 12]
    assert "Total params: 27 " in text and "Trainable params: 21 " in text and "Non-trainable params: 6 " in text
    frozen = nn.Sequential(nn.BatchNorm2d(8)).requires_grad_(False)  # frozen gamma/beta add to the statistics
    assert "Trainable params: 0 " in frozen.summary((8, 1, 1))
    assert "Non-trainable params: 32 " in frozen.summary((8, 1, 1))
    no_stats = nn.Sequential(nn.BatchNorm2d(8, track_running_stats=False))
    assert "Non-trainable params: 0 " in no_stats.summary((8, 2, 2))


def test_frozen_parameters_are_non_trainable():
    model = build_model("keras-mnist")
    model[0].requires_grad_(False)
    text = model.summary()
    assert "Total params: 421,642" in text
    assert "Trainable params: 421,322" in text
    assert "Non-trainable params: 320 " in text


def test_summary_restores_modes_and_leaves_state_alone():
    model = build_model("resnet-cifar")
    model[1].eval()  # a frozen BN inside a training model keeps its own flag
    before = {k: v.numpy() for k, v in model.state_dict().items()}
    model.summary(batch_size=4)
    assert model.training and not model[1].training and model[4].bn1.training
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])  # eval + no_grad: no running-stat updates
    r = rows(model.summary())
    assert ("4.shortcut.0 (Conv2d)", "(None, 32, 16, 16)", 512) in r
    stats = sum(b.numel() for name, b in model.named_buffers() if "running_" in name)
    assert model.num_parameters() == 78042 and stats == 2 * (16 + 2 * 16 + 3 * 32 + 3 * 64)
    assert sum(x[2] for x in r) == 78042 + stats


def test_summary_batch_size_explicit_input_shape_and_errors():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    text = model.summary((3, 4), batch_size=5)
    assert "(5, 12)" in text and "Input shape: (5, 3, 4)" in text
    assert 'Model: "Sequential"' in text
    with pytest.raises(ArgumentError, match="input_shape"):
        model.summary()
    with pytest.raises(ArgumentError):
        model.summary((3, 0))
    with pytest.raises(ArgumentError):
        model.summary((3, 4), batch_size=0)
    with pytest.raises(gpucnn.ShapeError, match=r"^Linear #1 \(12->2\)"):
        model.summary((3, 5))


def test_summary_docstring_explains_the_keras_difference():
    doc = nn.Module.summary.__doc__
    assert "Keras" in doc and "PyTorch counts only parameters" in doc
