"""gpucnn.profiler: per-op, per-layer and per-shape times of forward and backward; the recorder is
installed only inside the block; profile_model's training and inference steps."""
import numpy as np
import pytest

import gpucnn
from gpucnn import ArgumentError, function, nn, optim, profiler
from gpucnn.functional import cross_entropy
from gpucnn.models import build_model


def _net():
    gpucnn.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3),
                        nn.Flatten(), nn.Linear(6 * 2 * 2, 3))
    net.input_shape = (1, 8, 8)
    return net


def _step(net, opt, x, y):
    opt.zero_grad()
    loss = cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return gpucnn.tensor(rng.random((2, 1, 8, 8), dtype=np.float32)), gpucnn.tensor(rng.integers(0, 3, 2))


def test_by_op_counts_every_forward_and_backward(data):
    net = _net()
    opt = optim.SGD(net.parameters(), lr=0.1)
    with profiler.profile() as prof:
        for _ in range(3):
            _step(net, opt, *data)
    rows = {(r.what, r.phase): r for r in prof.rows}
    assert rows["conv2d", "forward"].calls == 6 and rows["conv2d", "backward"].calls == 6  # 2 convs x 3
    assert rows["cross_entropy", "backward"].calls == 3 and rows["max_pool2d", "forward"].calls == 3
    assert all(r.seconds > 0 for r in prof.rows)
    assert [r.seconds for r in prof.rows] == sorted((r.seconds for r in prof.rows), reverse=True)
    assert 0 < prof.op_seconds <= prof.wall_seconds


def test_by_layer_names_both_passes_after_the_forwards_layer(data):
    net = _net()
    opt = optim.SGD(net.parameters(), lr=0.1)
    with profiler.profile(by="layer") as prof:
        _step(net, opt, *data)
    keys = {(r.what, r.phase) for r in prof.rows}
    for phase in ("forward", "backward"):
        assert ("Conv2d #0 (1->4, 3x3): conv2d", phase) in keys
        assert ("Conv2d #3 (4->6, 3x3): conv2d", phase) in keys
        assert ("Linear #5 (24->3): linear", phase) in keys
        assert ("cross_entropy", phase) in keys  # outside any layer: the op alone


def test_by_shape_and_the_table(data):
    net = _net()
    with profiler.profile(by="shape") as prof:
        with gpucnn.no_grad():
            net(data[0])
    whats = {r.what for r in prof.rows}
    assert {"conv2d (2, 1, 8, 8)", "conv2d (2, 4, 4, 4)", "linear (2, 24)"} <= whats
    prof.steps = 1
    text = prof.table(limit=2)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["op", "pass", "calls"] and "ms/step" in lines[0]
    assert len(lines) == 2 + 2 + 1 + 1 + 2  # head, rule, 2 rows, "(n more rows)", rule, outside, total
    assert f"({len(prof.rows) - 2} more rows)" in text
    assert lines[-1].startswith("total (wall time)") and lines[-1].endswith("100.0 %")
    prof.steps = None
    assert "ms/step" not in prof.table().splitlines()[0] and "ms/step" in prof.table(steps=4).splitlines()[0]
    with pytest.raises(ArgumentError, match="steps must be >= 1, got 0"):
        prof.table(steps=0)


def test_the_recorder_is_installed_only_inside_the_block(data):
    assert function._recorder is None
    with pytest.raises(RuntimeError, match="boom"):
        with profiler.profile():
            assert function._recorder is not None
            raise RuntimeError("boom")
    assert function._recorder is None
    with profiler.profile():
        with pytest.raises(ArgumentError, match="already recording"):
            with profiler.profile():
                pass
    assert function._recorder is None
    with pytest.raises(ArgumentError, match=r"by must be one of 'op', 'layer', 'shape', got 'module'"):
        with profiler.profile(by="module"):
            pass


def test_profiling_changes_no_value_and_synchronises_around_each_op(data, monkeypatch):
    net = _net()
    with gpucnn.no_grad():
        plain = net(data[0]).numpy()
    syncs = []
    cpu = gpucnn.get_device("cpu")
    monkeypatch.setattr(cpu, "synchronize", lambda: syncs.append(1), raising=False)
    with profiler.profile() as prof:
        with gpucnn.no_grad():
            profiled = net(data[0]).numpy()
    np.testing.assert_array_equal(profiled, plain)
    assert len(syncs) == 2 * sum(r.calls for r in prof.rows)  # before and after every op


@pytest.mark.parametrize("name, batch", [("keras-mnist", 2), ("unet-tiny", 1)])
def test_profile_model_trains_and_infers(name, batch):
    model = build_model(name)
    model.eval()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    prof = profiler.profile_model(model, batch, steps=2, warmup=1, by="op")
    assert prof.steps == 2 and "ms/step" in prof.table().splitlines()[0]
    assert {r.phase for r in prof.rows} == {"forward", "backward"}
    assert any(r.what == "conv2d" and r.calls >= 2 for r in prof.rows)
    infer = profiler.profile_model(model, batch, steps=1, warmup=0, train=False)
    assert {r.phase for r in infer.rows} == {"forward"}
    # (the steps ran on a copy: the user's weights, running statistics and mode are untouched)
    assert not model.training
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_profile_model_argument_errors():
    with pytest.raises(ArgumentError, match="steps >= 1, warmup >= 0 and batch_size >= 1, got steps=0"):
        profiler.profile_model(build_model("keras-mnist"), 2, steps=0)
    with pytest.raises(ArgumentError, match="the model has no input_shape"):
        profiler.profile_model(nn.Sequential(nn.Linear(2, 2)), 2)
