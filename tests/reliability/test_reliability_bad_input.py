"""Bad input at the boundary: every public functional op and layer, table-driven.

Each case gives the call, the error type it must raise and the fragments its message must contain: the op
or layer (for layers in a Sequential: its type, position and short description, e.g. ``Conv2d #3 (32->64,
3x3)``), the argument, the expected and the actual value. A case that raised another exception (a
``TypeError`` from deep inside NumPy), returned silently, or lost a fragment from its message fails.

Cases marked ``GAP`` are known gaps in code this suite's author does not own; they are strict xfails
(``docs/reliability.md`` lists them with the file to fix): when the gap is closed the xfail fails, and
the mark should be removed.
"""
from __future__ import annotations

import numpy as np
import pytest

import gpucnn
from gpucnn import functional as F
from gpucnn import nn
from gpucnn.errors import ArgumentError, DataError, DeviceError, GpucnnError, ShapeError


def T(shape, dtype=np.float32, device="cpu"):
    return gpucnn.tensor(np.ones(shape, dtype=dtype), device=device)


def seq(*layers):
    gpucnn.manual_seed(0)
    return nn.Sequential(*layers)


def gap(reason):
    return pytest.mark.xfail(strict=True, reason="GAP: " + reason)


# (id, call, error type, message fragments[, marks])
CASES = [
    # -- conv2d (functional) ------------------------------------------------------------------------------
    ("conv2d-rank", lambda: F.conv2d(T((1, 5, 5)), T((2, 1, 3, 3))), ShapeError,
     ["conv2d", "input", "4-D", "3-D shape (1, 5, 5)"]),
    ("conv2d-weight-rank", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3))), ShapeError,
     ["conv2d", "weight", "4-D", "3-D shape (2, 1, 3)"]),
    ("conv2d-channels", lambda: F.conv2d(T((1, 2, 5, 5)), T((2, 1, 3, 3))), ShapeError,
     ["conv2d", "input has 2 channels", "expected 1", "input shape (1, 2, 5, 5)"]),
    ("conv2d-int-input", lambda: F.conv2d(T((1, 1, 5, 5), np.int32), T((2, 1, 3, 3))), ArgumentError,
     ["conv2d", "input", "int32", "float32, float64, float16 or bfloat16"]),
    ("conv2d-float16-input", lambda: F.conv2d(T((1, 1, 5, 5), np.float16), T((2, 1, 3, 3))), ArgumentError,
     ["conv2d", "input and weight", "different dtypes", "float16 and float32"]),
    ("conv2d-dtype-mismatch", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3), np.float64)), ArgumentError,
     ["conv2d", "weight", "float32", "float64"]),
    ("conv2d-kernel-larger-than-input", lambda: F.conv2d(T((1, 1, 2, 2)), T((2, 1, 3, 3))), ShapeError,
     ["conv2d", "kernel 3x3", "larger than the padded input 2x2", "padding 0"]),
    ("conv2d-dilated-kernel-larger", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3)), dilation=3), ShapeError,
     ["conv2d", "kernel 3x3", "dilation 3", "effective 7x7", "padded input 5x5"]),
    ("conv2d-stride-0", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3)), stride=0), ArgumentError,
     ["conv2d", "stride", ">= 1", "got 0"]),
    ("conv2d-stride-negative", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3)), stride=-1), ArgumentError,
     ["conv2d", "stride", ">= 1", "got -1"]),
    ("conv2d-stride-float", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3)), stride=1.5), ArgumentError,
     ["conv2d", "stride", "int", "got 1.5"]),
    ("conv2d-padding-negative", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3)), padding=-1), ArgumentError,
     ["conv2d", "padding", ">= 0", "got -1"]),
    ("conv2d-dilation-0", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3)), dilation=0), ArgumentError,
     ["conv2d", "dilation", ">= 1", "got 0"]),
    ("conv2d-padding-word", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3)), padding="full"), ArgumentError,
     ["conv2d", "padding", "'same'", "got 'full'"]),
    ("conv2d-same-reflect-impossible",
     lambda: F.conv2d(T((1, 1, 2, 2)), T((2, 1, 5, 5)), padding="same", padding_mode="reflect"), ArgumentError,
     ["conv2d", "padding_mode 'reflect'", "smaller than the input size", "padding 2", "input 2x2"]),
    ("conv2d-same-circular-impossible",
     lambda: F.conv2d(T((1, 1, 2, 2)), T((2, 1, 7, 7)), padding="same", padding_mode="circular"), ArgumentError,
     ["conv2d", "padding_mode 'circular'", "at most the input size", "padding 3", "input 2x2"]),
    ("conv2d-padding-mode", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3)), padding_mode="mirror"),
     ArgumentError, ["conv2d", "padding_mode", "'zeros'", "got 'mirror'"]),
    ("conv2d-empty-batch", lambda: F.conv2d(T((0, 1, 5, 5)), T((2, 1, 3, 3))), ShapeError,
     ["conv2d", "empty batch", "N = 0", "input shape (0, 1, 5, 5)"]),
    ("conv2d-bias-shape", lambda: F.conv2d(T((1, 1, 5, 5)), T((2, 1, 3, 3)), T((3,))), ShapeError,
     ["conv2d", "bias", "shape (3,)", "expected (2,)"]),
    ("conv2d-not-a-tensor", lambda: F.conv2d(np.ones((1, 1, 5, 5), np.float32), T((2, 1, 3, 3))), ArgumentError,
     ["conv2d", "input", "gpucnn Tensor", "ndarray"]),
    # -- conv1d -------------------------------------------------------------------------------------------
    ("conv1d-rank", lambda: F.conv1d(T((1, 1, 5, 5)), T((2, 1, 3))), ShapeError,
     ["conv1d", "input", "3-D", "4-D shape (1, 1, 5, 5)"]),
    ("conv1d-padding-float", lambda: F.conv1d(T((1, 1, 5)), T((2, 1, 3)), padding=1.5), ArgumentError,
     ["conv1d", "padding", "int >= 0", "got 1.5"]),
    ("conv1d-padding-pair", lambda: F.conv1d(T((1, 1, 5)), T((2, 1, 3)), padding=(1, 2)), ArgumentError,
     ["conv1d", "padding", "int >= 0", "got (1, 2)"]),
    ("conv1d-kernel-larger", lambda: F.conv1d(T((1, 1, 2)), T((2, 1, 3))), ShapeError,
     ["conv1d", "kernel 3", "larger than the padded input 2"]),
    ("conv1d-same-reflect-impossible",
     lambda: F.conv1d(T((1, 1, 2)), T((2, 1, 5)), padding="same", padding_mode="reflect"), ArgumentError,
     ["conv1d", "padding_mode 'reflect'", "padding 2", "input 2"]),
    # -- linear -------------------------------------------------------------------------------------------
    ("linear-features", lambda: F.linear(T((2, 5)), T((4, 3))), ShapeError,
     ["linear", "input has 5 features", "expected 3", "input shape (2, 5)"]),
    ("linear-scalar-input", lambda: F.linear(gpucnn.tensor(np.float32(1)), T((4, 3))), ShapeError,
     ["linear", "input", "expected 3", "input shape ()"]),
    ("linear-not-a-tensor", lambda: F.linear(np.ones((2, 3), np.float32), T((4, 3))), ArgumentError,
     ["linear", "input", "gpucnn Tensor", "ndarray"]),
    ("linear-int-input", lambda: F.linear(T((2, 3), np.int64), T((4, 3))), ArgumentError,
     ["linear", "input", "int64", "float32"]),
    ("linear-dtype-mismatch", lambda: F.linear(T((2, 3), np.float64), T((4, 3))), ArgumentError,
     ["linear", "float64", "float32"]),
    # -- batch_norm ---------------------------------------------------------------------------------------
    ("batch_norm-int-input", lambda: F.batch_norm(T((2, 3, 4, 4), np.int32), None, None, training=True),
     ArgumentError, ["batch_norm", "input", "float16, bfloat16, float32 or float64", "int32"]),
    ("batch_norm-float16-weight-bfloat16", lambda: F.batch_norm(T((2, 3, 4, 4), np.float16), None, None,
                                                                T((3,), gpucnn.bfloat16), training=True),
     ArgumentError, ["batch_norm", "weight", "bfloat16", "float16 or float32"]),
    ("batch_norm-rank", lambda: F.batch_norm(T((3,)), None, None, training=True), ShapeError,
     ["batch_norm", "rank 2 or more (N, C, ...)", "rank 1", "input shape (3,)"]),
    ("batch_norm-empty-batch", lambda: F.batch_norm(T((0, 3, 4, 4)), None, None, training=True), ShapeError,
     ["batch_norm", "empty", "input shape (0, 3, 4, 4)"]),
    ("batch_norm-running-stats-length", lambda: F.batch_norm(T((2, 3, 4, 4)), T((4,)), T((4,))), ShapeError,
     ["batch_norm", "input has 3 channels", "expected 4", "running_mean shape (4,)"]),
    ("batch_norm-weight-dtype",
     lambda: F.batch_norm(T((2, 3, 4, 4)), None, None, T((3,), np.float64), training=True), ArgumentError,
     ["batch_norm", "weight", "float64", "expected float32"]),
    ("batch_norm-momentum", lambda: F.batch_norm(T((2, 3)), None, None, training=True, momentum=2.0),
     ArgumentError, ["batch_norm", "momentum", "[0, 1]", "got 2.0"]),
    ("batch_norm-eps", lambda: F.batch_norm(T((2, 3)), None, None, training=True, eps=0.0), ArgumentError,
     ["batch_norm", "eps", "> 0", "got 0.0"]),
    ("batch_norm-one-value-per-channel", lambda: F.batch_norm(T((1, 3)), None, None, training=True),
     ArgumentError, ["batch_norm", "more than 1 value per channel", "input shape (1, 3)"]),
    # -- pooling ------------------------------------------------------------------------------------------
    ("max_pool2d-rank", lambda: F.max_pool2d(T((1, 4, 4)), 2), ShapeError,
     ["max_pool2d", "rank 4", "rank 3", "input shape (1, 4, 4)"]),
    ("max_pool2d-int-input", lambda: F.max_pool2d(T((1, 1, 4, 4), np.int32), 2), ArgumentError,
     ["max_pool2d", "floating-point", "int32"]),
    ("max_pool2d-bool-input", lambda: F.max_pool2d(T((1, 1, 4, 4), np.bool_), 2), ArgumentError,
     ["max_pool2d", "float16, bfloat16, float32 or float64", "bool"]),
    ("max_pool2d-kernel-larger", lambda: F.max_pool2d(T((1, 1, 2, 2)), 3), ShapeError,
     ["max_pool2d", "kernel 3x3", "larger than the padded input 2x2"]),
    ("max_pool2d-kernel-0", lambda: F.max_pool2d(T((1, 1, 4, 4)), 0), ArgumentError,
     ["max_pool2d", "kernel_size", ">= 1", "got 0"]),
    ("max_pool2d-kernel-float", lambda: F.max_pool2d(T((1, 1, 4, 4)), 2.5), ArgumentError,
     ["max_pool2d", "kernel_size", "int", "got 2.5"]),
    ("max_pool2d-stride-0", lambda: F.max_pool2d(T((1, 1, 4, 4)), 2, stride=0), ArgumentError,
     ["max_pool2d", "stride", ">= 1", "got 0"]),
    ("max_pool2d-padding-negative", lambda: F.max_pool2d(T((1, 1, 4, 4)), 2, padding=-1), ArgumentError,
     ["max_pool2d", "padding", ">= 0", "got -1"]),
    ("max_pool2d-dilation-0", lambda: F.max_pool2d(T((1, 1, 4, 4)), 2, dilation=0), ArgumentError,
     ["max_pool2d", "dilation", ">= 1", "got 0"]),
    ("max_pool2d-ceil-mode", lambda: F.max_pool2d(T((1, 1, 4, 4)), 2, ceil_mode="yes"), ArgumentError,
     ["max_pool2d", "ceil_mode", "True or False", "'yes'"]),
    ("max_pool2d-empty-batch", lambda: F.max_pool2d(T((0, 1, 4, 4)), 2), ShapeError,
     ["max_pool2d", "empty", "input shape (0, 1, 4, 4)"]),
    ("avg_pool2d-padding-over-half", lambda: F.avg_pool2d(T((1, 1, 4, 4)), 2, padding=2), ArgumentError,
     ["avg_pool2d", "padding 2", "half the kernel size 2x2", "padding <= 1"]),
    ("avg_pool2d-not-a-tensor", lambda: F.avg_pool2d(np.ones((1, 1, 4, 4)), 2), ArgumentError,
     ["avg_pool2d", "input", "gpucnn Tensor", "ndarray"]),
    ("max_pool1d-rank", lambda: F.max_pool1d(T((1, 1, 4, 4)), 2), ShapeError,
     ["max_pool1d", "rank 3", "rank 4", "input shape (1, 1, 4, 4)"]),
    ("avg_pool1d-kernel-larger", lambda: F.avg_pool1d(T((1, 1, 2)), 3), ShapeError,
     ["avg_pool1d", "kernel 3", "larger than the padded input 2"]),
    ("adaptive_avg_pool2d-output-0", lambda: F.adaptive_avg_pool2d(T((1, 1, 4, 4)), 0), ArgumentError,
     ["adaptive_avg_pool2d", "output_size", ">= 1", "got 0"]),
    ("adaptive_avg_pool2d-output-pair", lambda: F.adaptive_avg_pool2d(T((1, 1, 4, 4)), (2, 0)), ArgumentError,
     ["adaptive_avg_pool2d", "output_size", ">= 1", "(2, 0)"]),
    ("global_avg_pool2d-rank", lambda: F.global_avg_pool2d(T((1, 4, 4))), ShapeError,
     ["global_avg_pool2d", "rank 4", "rank 3", "input shape (1, 4, 4)"]),
    ("global_avg_pool2d-int-input", lambda: F.global_avg_pool2d(T((1, 1, 4, 4), np.int32)), ArgumentError,
     ["global_avg_pool2d", "floating-point", "int32"]),
    # -- activations, dropout, shape ops ------------------------------------------------------------------
    ("relu-not-a-tensor", lambda: F.relu(np.ones(3)), ArgumentError, ["relu", "input", "gpucnn Tensor", "ndarray"]),
    ("log_softmax-not-a-tensor", lambda: F.log_softmax(np.ones((2, 3)), 1), ArgumentError,
     ["log_softmax", "input", "gpucnn Tensor", "ndarray"]),
    ("softmax-list-input", lambda: F.softmax([[1.0, 2.0]], 1), ArgumentError,
     ["softmax", "input", "gpucnn Tensor", "list"]),
    ("softmax-dim-out-of-range", lambda: F.softmax(T((2, 3)), 2), ArgumentError,
     ["softmax", "dim", "2", "shape (2, 3)"]),
    ("softmax-dim-not-int", lambda: F.softmax(T((2, 3)), "a"), ArgumentError, ["softmax", "dim", "'a'"]),
    ("dropout-p-range", lambda: F.dropout(T((2, 3)), 2.0), ArgumentError, ["dropout", "p", "[0, 1]", "2.0"]),
    ("dropout-p-not-a-number", lambda: F.dropout(T((2, 3)), "a"), ArgumentError, ["dropout", "p", "'a'"]),
    ("dropout-int-input", lambda: F.dropout(T((2, 3), np.int32), 0.5), ArgumentError,
     ["dropout", "int32", "floating-point"]),
    ("flatten-start-after-end", lambda: F.flatten(T((2, 3, 4)), 2, 1), ArgumentError,
     ["flatten", "start_dim 2", "end_dim 1", "(2, 3, 4)"]),
    ("flatten-dim-out-of-range", lambda: F.flatten(T((2, 3)), 5), ArgumentError,
     ["flatten", "start_dim", "5", "(2, 3)"]),
    ("cat-empty", lambda: gpucnn.cat([]), ArgumentError, ["cat", "at least one"]),
    ("cat-shapes", lambda: gpucnn.cat([T((2, 3)), T((2, 4))]), ShapeError,
     ["cat", "tensor 1", "(2, 4)", "(2, 3)"]),
    ("cat-dim-out-of-range", lambda: gpucnn.cat([T((2, 3)), T((2, 3))], dim=5), ArgumentError,
     ["cat", "dim", "5", "(2, 3)"]),
    ("matmul-shapes", lambda: T((2, 3)) @ T((4, 5)), ShapeError, ["matmul", "(2, 3)", "(4, 5)", "not aligned"]),
    ("add-broadcast", lambda: T((2, 3)) + T((4, 5)), ShapeError, ["add", "(2, 3)", "(4, 5)", "broadcast"]),
    ("reshape-size", lambda: T((2, 3)).reshape(7), ShapeError, ["reshape", "(2, 3)", "6 elements", "(7,)"]),
    ("upsample-scale-0", lambda: nn.functional.upsample_nearest2d(T((1, 1, 2, 2)), 0), ArgumentError,
     ["upsample_nearest2d", "scale_factor", ">= 1", "got 0"]),
    ("upsample-scale-float", lambda: nn.functional.upsample_nearest2d(T((1, 1, 2, 2)), 1.5), ArgumentError,
     ["upsample_nearest2d", "scale_factor", "integer", "got 1.5"]),
    ("upsample-rank", lambda: nn.functional.upsample_nearest2d(T((1, 2, 2)), 2), ShapeError,
     ["upsample_nearest2d", "rank 4", "rank 3", "input shape (1, 2, 2)"]),
    # -- cross_entropy: labels ----------------------------------------------------------------------------
    ("cross_entropy-label-too-large", lambda: F.cross_entropy(T((2, 3)), np.array([0, 3])), ArgumentError,
     ["cross_entropy", "target 3", "outside [0, 3)", "3 classes"]),
    ("cross_entropy-label-negative", lambda: F.cross_entropy(T((2, 3)), np.array([0, -1])), ArgumentError,
     ["cross_entropy", "target -1", "outside [0, 3)"]),
    ("cross_entropy-float-labels", lambda: F.cross_entropy(T((2, 3)), np.array([0.0, 1.0])), ArgumentError,
     ["cross_entropy", "targets", "integer class indices", "float64"]),
    ("cross_entropy-bool-labels", lambda: F.cross_entropy(T((2, 3)), np.array([True, False])), ArgumentError,
     ["cross_entropy", "integer class indices", "bool"]),
    ("cross_entropy-string-labels", lambda: F.cross_entropy(T((2, 3)), np.array(["a", "b"])), ArgumentError,
     ["cross_entropy", "integer class indices", "<U1"]),
    ("cross_entropy-label-count", lambda: F.cross_entropy(T((2, 3)), np.array([0, 1, 2])), ShapeError,
     ["cross_entropy", "target has shape (3,)", "expected (2,)", "input shape (2, 3)"]),
    ("cross_entropy-label-rank", lambda: F.cross_entropy(T((2, 3)), np.array([[0], [1]])), ShapeError,
     ["cross_entropy", "target has shape (2, 1)", "expected (2,)"]),
    ("cross_entropy-unbatched-target", lambda: F.cross_entropy(T((3,)), np.array([0])), ShapeError,
     ["cross_entropy", "unbatched input of shape (3,)", "a single class index", "got shape (1,)"]),
    ("cross_entropy-empty-batch", lambda: F.cross_entropy(T((0, 3)), np.zeros(0, np.int64)), ShapeError,
     ["cross_entropy", "empty batch", "(0, 3)"]),
    ("cross_entropy-reduction", lambda: F.cross_entropy(T((2, 3)), np.array([0, 1]), reduction="avg"),
     ArgumentError, ["cross_entropy", "reduction", "'mean'", "got 'avg'"]),
    ("cross_entropy-not-a-tensor", lambda: F.cross_entropy(np.ones((2, 3), np.float32), np.array([0, 1])),
     ArgumentError, ["cross_entropy", "input", "gpucnn Tensor", "ndarray"]),
    ("cross_entropy-mixed-devices",
     lambda: F.cross_entropy(T((2, 3)), gpucnn.tensor(np.array([0, 1]), device="emu")), DeviceError,
     ["cross_entropy", "different devices", "cpu", "emu", ".to("]),

    # -- layers in a Sequential: the message names the layer, its position and description ----------------
    ("Conv2d-issue-example",   # the issue's own example: 16 channels into the 4th layer, which takes 32
     lambda: seq(nn.Conv2d(3, 16, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3))(
         T((8, 3, 28, 28))), ShapeError,
     ["Conv2d #3 (32->64, 3x3): ", "input has 16 channels, expected 32", "(input shape (8, 16, 14, 14)"]),
    ("Conv2d-rank", lambda: seq(nn.Conv2d(1, 2, 3))(T((1, 8, 8))), ShapeError,
     ["Conv2d #0 (1->2, 3x3)", "4-D (N, C, H, W)", "rank 3", "(1, 8, 8)", "add a batch dimension"]),
    ("Conv2d-int-input", lambda: seq(nn.Conv2d(1, 2, 3))(T((1, 1, 8, 8), np.int32)), ArgumentError,
     ["Conv2d #0 (1->2, 3x3)", "input", "int32", "float32, float64, float16 or bfloat16"]),
    ("Conv2d-float16-input", lambda: seq(nn.Conv2d(1, 2, 3))(T((1, 1, 8, 8), np.float16)), ArgumentError,
     ["Conv2d #0 (1->2, 3x3)", "input and weight", "float16 and float32"]),
    ("Conv2d-float64-input", lambda: seq(nn.Conv2d(1, 2, 3))(T((1, 1, 8, 8), np.float64)), ArgumentError,
     ["Conv2d #0 (1->2, 3x3)", "float64", "float32", ".to(dtype=...)"]),
    ("Conv2d-kernel-larger", lambda: seq(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 5))(T((1, 1, 5, 5))),
     ShapeError, ["Conv2d #2 (2->2, 5x5)", "kernel 5x5", "larger than the padded input 3x3"]),
    ("Conv2d-same-reflect-impossible",
     lambda: seq(nn.Conv2d(1, 2, 5, padding="same", padding_mode="reflect"))(T((1, 1, 2, 2))), ArgumentError,
     ["Conv2d #0 (1->2, 5x5)", "padding_mode 'reflect'", "padding 2", "input 2x2"]),
    ("Conv2d-empty-batch", lambda: seq(nn.Conv2d(1, 2, 3))(T((0, 1, 5, 5))), ShapeError,
     ["Conv2d #0 (1->2, 3x3)", "empty batch", "(0, 1, 5, 5)"]),
    ("Conv2d-not-a-tensor", lambda: seq(nn.Conv2d(1, 2, 3))(np.ones((1, 1, 5, 5), np.float32)), ArgumentError,
     ["Conv2d #0 (1->2, 3x3)", "gpucnn Tensor", "ndarray"]),
    ("Conv2d-nested-path", lambda: seq(nn.Sequential(nn.ReLU(), nn.Conv2d(1, 2, 3)))(T((1, 3, 5, 5))), ShapeError,
     ["Conv2d '0.1' (1->2, 3x3)", "input has 3 channels", "expected 1"]),
    ("Conv2d-kernel_size-0", lambda: nn.Conv2d(1, 2, 0), ArgumentError, ["Conv2d", "kernel_size", ">= 1", "0"]),
    ("Conv2d-kernel_size-float", lambda: nn.Conv2d(1, 2, 2.5), ArgumentError,
     ["Conv2d", "kernel_size", "integer", "2.5"]),
    ("Conv2d-stride-0", lambda: nn.Conv2d(1, 2, 3, stride=0), ArgumentError, ["Conv2d", "stride", ">= 1", "0"]),
    ("Conv2d-padding-negative", lambda: nn.Conv2d(1, 2, 3, padding=-1), ArgumentError,
     ["Conv2d", "padding", ">= 0", "-1"]),
    ("Conv2d-dilation-0", lambda: nn.Conv2d(1, 2, 3, dilation=0), ArgumentError, ["Conv2d", "dilation", ">= 1", "0"]),
    ("Conv2d-padding-word", lambda: nn.Conv2d(1, 2, 3, padding="full"), ArgumentError,
     ["Conv2d", "padding", "'same'", "'full'"]),
    ("Conv2d-padding_mode", lambda: nn.Conv2d(1, 2, 3, padding_mode="mirror"), ArgumentError,
     ["Conv2d", "padding_mode", "zeros", "'mirror'"]),
    ("Conv2d-in_channels-0", lambda: nn.Conv2d(0, 2, 3), ArgumentError, ["Conv2d", "in_channels", ">= 1", "0"]),
    ("Conv1d-padding-float", lambda: nn.Conv1d(1, 2, 3, padding=1.5), ArgumentError,
     ["Conv1d", "padding", "integer", "1.5"]),
    ("Conv1d-rank", lambda: seq(nn.Conv1d(1, 2, 3))(T((1, 1, 8, 8))), ShapeError,
     ["Conv1d #0 (1->2, kernel 3)", "3-D (N, C, L)", "rank 4", "(1, 1, 8, 8)"]),
    ("Linear-features", lambda: seq(nn.Flatten(), nn.Linear(64, 3))(T((2, 1, 4, 4))), ShapeError,
     ["Linear #1 (64->3)", "input has 16 features", "expected 64", "input shape (2, 16)", "Flatten"]),
    ("Linear-int-input", lambda: seq(nn.Linear(3, 4))(T((2, 3), np.int32)), ArgumentError,
     ["Linear #0 (3->4)", "int32", "float32"]),
    ("Linear-in_features-0", lambda: nn.Linear(0, 3), ArgumentError, ["Linear", "in_features", ">= 1", "0"]),
    ("BatchNorm2d-channels", lambda: seq(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(4))(T((2, 1, 5, 5))), ShapeError,
     ["BatchNorm2d #1 (4)", "input has 2 channels", "expected 4", "(2, 2, 3, 3)"]),
    ("BatchNorm2d-rank", lambda: seq(nn.BatchNorm2d(3))(T((2, 3))), ShapeError,
     ["BatchNorm2d #0 (3)", "4-D (N, C, H, W)", "rank 2", "(2, 3)"]),
    ("BatchNorm1d-rank", lambda: seq(nn.BatchNorm1d(3))(T((2, 3, 4, 4))), ShapeError,
     ["BatchNorm1d #0 (3)", "2-D (N, C) or 3-D (N, C, L)", "rank 4"]),
    ("BatchNorm2d-int-input", lambda: seq(nn.BatchNorm2d(3))(T((2, 3, 4, 4), np.int32)), ArgumentError,
     ["BatchNorm2d #0 (3)", "float32 or float64", "int32"]),
    ("BatchNorm2d-float64-input", lambda: seq(nn.BatchNorm2d(3))(T((2, 3, 4, 4), np.float64)), ArgumentError,
     ["BatchNorm2d #0 (3)", "float64", "expected", "float32"]),
    ("BatchNorm2d-empty-batch", lambda: seq(nn.BatchNorm2d(3))(T((0, 3, 4, 4))), ShapeError,
     ["BatchNorm2d #0 (3)", "empty", "(0, 3, 4, 4)"]),
    ("BatchNorm2d-eps", lambda: nn.BatchNorm2d(3, eps=0), ArgumentError, ["BatchNorm2d", "eps", "(0.0, inf]", "0"]),
    ("BatchNorm2d-momentum", lambda: nn.BatchNorm2d(3, momentum=2), ArgumentError,
     ["BatchNorm2d", "momentum", "[0.0, 1.0]", "2"]),
    ("BatchNorm2d-num_features", lambda: nn.BatchNorm2d(0), ArgumentError,
     ["BatchNorm2d", "num_features", ">= 1", "0"]),
    ("MaxPool2d-kernel-larger", lambda: seq(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(5))(T((1, 1, 5, 5))),
     ShapeError, ["MaxPool2d #2 (5x5)", "kernel 5x5", "larger than the padded input 3x3"]),
    ("MaxPool2d-kernel-0", lambda: nn.MaxPool2d(0), ArgumentError, ["MaxPool2d", "kernel_size", ">= 1", "0"]),
    ("MaxPool2d-stride-0", lambda: nn.MaxPool2d(2, stride=0), ArgumentError, ["MaxPool2d", "stride", ">= 1", "0"]),
    ("MaxPool2d-padding-over-half", lambda: nn.MaxPool2d(2, padding=2), ArgumentError,
     ["MaxPool2d", "padding 2", "half the kernel size 2x2", "<= 1"]),
    ("MaxPool2d-dilation-0", lambda: nn.MaxPool2d(2, dilation=0), ArgumentError,
     ["MaxPool2d", "dilation", ">= 1", "0"]),
    ("AvgPool2d-rank", lambda: seq(nn.AvgPool2d(2))(T((1, 4, 4))), ShapeError,
     ["AvgPool2d #0 (2x2)", "rank 4", "rank 3", "(1, 4, 4)"]),
    ("AdaptiveAvgPool2d-output-0", lambda: nn.AdaptiveAvgPool2d(0), ArgumentError,
     ["AdaptiveAvgPool2d", "output_size", ">= 1", "0"]),
    ("GlobalAvgPool2d-rank", lambda: seq(nn.GlobalAvgPool2d())(T((1, 4, 4))), ShapeError,
     ["GlobalAvgPool2d #0", "rank 4", "rank 3", "(1, 4, 4)"]),
    ("Dropout-p", lambda: nn.Dropout(1.5), ArgumentError, ["Dropout", "p", "[0.0, 1.0]", "1.5"]),
    ("Flatten-dims", lambda: nn.Flatten("a"), ArgumentError, ["Flatten", "start_dim", "integers", "'a'"]),
    ("Flatten-rank", lambda: seq(nn.Flatten())(T((3,))), ShapeError,
     ["Flatten #0", "start_dim 1", "out of range", "input shape (3,)"]),
    ("Softmax-dim", lambda: nn.Softmax(1.5), ArgumentError, ["Softmax", "dim", "integer", "1.5"]),
    ("Upsample-scale", lambda: nn.Upsample(0), ArgumentError, ["Upsample", "scale_factor", ">= 1", "0"]),
    ("Upsample-mode", lambda: nn.Upsample(scale_factor=2, mode="bicubic"), ArgumentError,
     ["Upsample", "mode", "'bilinear'", "'bicubic'"]),
    ("Upsample-rank", lambda: seq(nn.Upsample(scale_factor=2, mode="bilinear"))(T((1, 2, 2))), ShapeError,
     ["Upsample #0 (x2 bilinear)", "rank-4", "rank 3"]),
    ("Linear-mixed-devices", lambda: seq(nn.Linear(3, 4)).to("emu")(T((2, 3))), DeviceError,
     ["Linear #0 (3->4)", "different devices", "cpu", "emu", "x.to('emu')", "model.to('cpu')"]),
    ("Conv2d-mixed-devices", lambda: seq(nn.Conv2d(1, 2, 3)).to("emu")(T((1, 1, 5, 5))), DeviceError,
     ["Conv2d #0 (1->2, 3x3)", "different devices", "x.to('emu')", "model.to('cpu')"]),

    # -- datasets given as arrays (files are covered by the loaders' own tests and the fuzzers) ------------
    ("ArrayDataset-float-labels",
     lambda: _dataset(np.zeros((3, 1, 2, 2), np.uint8), np.array([0.5, 1.0, 2.0])), DataError,
     ["labels", "integer", "float64"]),
    ("ArrayDataset-negative-label", lambda: _dataset(np.zeros((3, 1, 2, 2), np.uint8), np.array([-1, 1, 2])),
     DataError, ["label -1", "negative"]),
    ("ArrayDataset-label-outside-classes",
     lambda: _dataset(np.zeros((3, 1, 2, 2), np.uint8), np.array([0, 1, 5]), classes=["a", "b"]), DataError,
     ["label 5", "outside [0, 2)", "2 classes"]),
    ("ArrayDataset-count-mismatch", lambda: _dataset(np.zeros((3, 1, 2, 2), np.uint8), np.zeros(2, np.int64)),
     DataError, ["3 images", "2 labels"]),
    ("DataLoader-batch_size-0", lambda: _loader(batch_size=0), ArgumentError, ["batch_size", "at least 1", "0"]),
]


def _dataset(x, y, **kw):
    from gpucnn.data import ArrayDataset
    return ArrayDataset(x, y, **kw)


def _loader(**kw):
    from gpucnn.data import DataLoader
    return DataLoader(_dataset(np.zeros((3, 1, 2, 2), np.uint8), np.array([0, 1, 1])), **kw)


def _params():
    out = []
    for case in CASES:
        name, call, error, fragments, *marks = case
        out.append(pytest.param(call, error, fragments, id=name, marks=marks))
    return out


#: the number of bad-input cases in this table (reported in docs/reliability.md)
NUM_CASES = len(CASES)


@pytest.mark.parametrize("call, error, fragments", _params())
def test_bad_input_gets_a_clear_error(call, error, fragments):
    with pytest.raises(GpucnnError) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, error), f"{type(info.value).__name__} instead of {error.__name__}: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} is not in the message: {message}"
    assert "\n" not in message  # one line, as the CLI prints it


def test_case_ids_are_unique():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))
