"""``gpucnn export``: a model as ONNX (for ONNX Runtime, TensorRT, OpenVINO) or as safetensors weights
(for PyTorch and Hugging Face tooling).

    gpucnn export runs/keras-mnist/model.npz --format onnx --out model.onnx
    gpucnn export runs/keras-mnist/model.npz --format safetensors

ONNX exports are checked by the onnx package and, where ONNX Runtime is installed, run by it at two
batch sizes against gpucnn's own inference output (``--no-check`` skips that).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click

#: ONNX Runtime vs gpucnn, relative to the largest output magnitude (float32 sums in another order)
CHECK_RTOL = 1e-4


def _shape(text: Optional[str]) -> Optional[tuple[int, ...]]:
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise click.BadParameter(f"{text!r} is not a shape like 1,28,28 (positive sizes, no batch dim)",
                                 param_hint="--input-shape")
    return shape


def _model(spec: str) -> Any:
    """A saved model (.npz / .safetensors with its architecture), or a fresh built-in / model file."""
    from gpucnn.models import build_model

    if spec.lower().endswith((".npz", ".safetensors")):
        from gpucnn.serialization import load_model
        return load_model(spec), True
    return build_model(spec), False


def _check_onnxruntime(model: Any, path: Path, shape: tuple[int, ...], batches: tuple[int, ...]) -> Optional[float]:
    """The largest relative difference between ONNX Runtime and gpucnn over ``batches``; None without
    ONNX Runtime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import numpy as np

    import gpucnn
    from gpucnn.errors import ModelFormatError

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    model.eval()
    for n in batches:
        x = rng.standard_normal((n,) + shape).astype(np.dtype(model.dtype))
        with gpucnn.no_grad():
            out = model(gpucnn.tensor(x, device=model.device))
        refs = [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]
        got = session.run(None, {session.get_inputs()[0].name: x})
        for a, b in zip(got, refs):
            if a.shape != b.shape:
                raise ModelFormatError(f"{path}: ONNX Runtime gives shape {a.shape}, gpucnn {b.shape} (batch {n})")
            worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()) / max(float(np.abs(b).max()), 1e-30))
    return worst


@click.command("export")
@click.argument("model_spec", metavar="MODEL")
@click.option("--format", "fmt", type=click.Choice(["onnx", "safetensors"], case_sensitive=False), default="onnx",
              show_default=True, help="onnx: the inference graph; safetensors: the weights (PyTorch's names).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="[default: MODEL's name with .onnx / .safetensors]")
@click.option("--opset", type=click.IntRange(min=13), default=17, show_default=True, help="ONNX opset version.")
@click.option("--input-shape", default=None, metavar="C,H,W", help="ONNX: the input without the batch dim "
              "[default: the model's own]")
@click.option("--static-batch", "static_batch", type=click.IntRange(min=1), default=None, metavar="N",
              help="ONNX: fix the batch size to N (default: any batch size).")
@click.option("--check/--no-check", default=True, show_default=True,
              help="ONNX: run the file with ONNX Runtime (when installed) against gpucnn at two batch sizes.")
def export(model_spec: str, fmt: str, out: Optional[Path], opset: int, input_shape: Optional[str],
           static_batch: Optional[int], check: bool) -> None:
    """Export MODEL (a saved .npz/.safetensors model, a built-in model name or a model file) as ONNX or
    safetensors."""
    import gpucnn
    from gpucnn.errors import ArgumentError, ModelFormatError

    fmt = fmt.lower()
    shape = _shape(input_shape)
    model, trained = _model(model_spec)
    stem = Path(model_spec).stem if model_spec.lower().endswith((".npz", ".safetensors", ".json", ".toml")) \
        else model_spec
    out = out if out is not None else Path(f"{stem}.{fmt}")
    params = model.num_parameters()
    note = "" if trained else " (freshly initialised: a built-in name or model file has no trained weights)"
    if fmt == "safetensors":
        if out.suffix.lower() != ".safetensors":
            raise ArgumentError(f"--out {out}: a safetensors file must end in .safetensors")
        gpucnn.save(model, out)
        click.echo(f"wrote {out}: {len(model.state_dict())} tensors, {params:,} parameters{note}")
        click.echo(f"PyTorch: model.load_state_dict(safetensors.torch.load_file({str(out)!r}), strict=True)")
        return
    shape = shape or getattr(model, "input_shape", None)
    if shape is None:
        raise ArgumentError(f"{model_spec}: the model does not say its input shape; give --input-shape C,H,W")
    import numpy as np

    batch = static_batch or 1
    example = np.random.default_rng(0).standard_normal((batch,) + tuple(shape)).astype(np.dtype(model.dtype))
    proto = gpucnn.onnx.export(model, example, out, opset_version=opset, dynamic_batch=static_batch is None)
    batches = "any batch size" if static_batch is None else f"batch {static_batch}"
    click.echo(f"wrote {out}: opset {opset}, {len(proto.graph.node)} nodes, {params:,} parameters, input "
               f"{proto.graph.input[0].name} (N, {', '.join(map(str, shape))}) for {batches}{note}")
    if not check:
        return
    tried = (1, 4) if static_batch is None else (static_batch,)
    worst = _check_onnxruntime(model, out, tuple(shape), tried)
    if worst is None:
        click.echo("not run with ONNX Runtime (not installed: pip install 'gpucnn[onnx]')")
    elif worst > CHECK_RTOL:
        raise ModelFormatError(f"{out}: ONNX Runtime's output differs from gpucnn's by {worst:.2g} (relative), more "
                               f"than {CHECK_RTOL:g}; please report this")
    else:
        click.echo(f"ONNX Runtime matches gpucnn: max relative difference {worst:.1e} at batch "
                   f"{' and '.join(map(str, tried))}")
