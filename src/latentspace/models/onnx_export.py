"""A model's encoder and decoder as two ONNX graphs, checked against torch with onnxruntime before writing.

    encoder.onnx   image (B, C, H, W) float32 in [0, 1] -> mean (B, D), logvar (B, D) float32
    decoder.onnx   z (B, D) float32 -> image (B, C, H, W) float32 in [0, 1] (the likelihood's mean, as
                   `Autoencoder.decode` and `latentspace decode` give it; round(image * 255) is the PNG)
    onnx.json      names, shapes, dtypes and pixel scaling of both graphs, plus the check's max differences

The batch dimension is dynamic in both graphs. The TorchScript-based exporter (``dynamo=False``) is used: it
needs only the ``onnx`` package, while torch 2.13's default torch.export path needs onnxscript and, at the
opset we target, wrote a Split node onnxruntime rejects. onnx/onnxruntime are imported only here, when
called, so the core package never needs them.
"""
from __future__ import annotations

import copy
import importlib.util
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from latentspace.models.autoencoder import Autoencoder
from latentspace.utils.files import write_bytes, write_json
from latentspace.utils.version import __version__

ONNX_EXTRA = "ONNX export needs the onnx extra: pip install 'latentspace[onnx]'"
OPSET = 17  # supported by every onnxruntime since 1.14 and by the legacy exporter
MAX_ABS_DIFF = 1e-4  # onnxruntime vs torch on the check batch; float32 kernels differ by ~1e-6
CHECK_BATCH = 7  # not 1 or the export batch (2), so a batch dimension baked in as a constant fails the check
ENCODER_FILE, DECODER_FILE, META_FILE = "encoder.onnx", "decoder.onnx", "onnx.json"
FORMAT = "latentspace.onnx/1"


@dataclass(frozen=True)
class OnnxExport:
    """The files written and how far onnxruntime's outputs were from torch's on the check batch."""

    encoder_path: Path
    decoder_path: Path
    meta_path: Path
    encoder_max_abs_diff: float
    decoder_max_abs_diff: float


class _EncoderGraph(nn.Module):
    """image -> (mean, logvar): the posterior's parameters (an 'ae' has logvar -inf: a point mass)."""

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.model.encode(image)
        return posterior.mean, posterior.logvar


class _DecoderGraph(nn.Module):
    """z -> image in [0, 1]: the sigmoid is inside the graph, so callers never see logits."""

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


def require_onnx() -> None:
    """Raise the one-line install hint unless both onnx and onnxruntime can be imported."""
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        raise ValueError(ONNX_EXTRA)


def _to_onnx(graph: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str]) -> bytes:
    buf = io.BytesIO()
    axes = {name: {0: "batch"} for name in inputs + outputs}
    with warnings.catch_warnings():
        # The legacy exporter's deprecation notice, and tracer notes on the models' Python-side shape checks
        # (they hold for every batch, which the check batch confirms), are not the user's business.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(graph, (example,), buf, dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)
    return buf.getvalue()


def run_onnx(model_bytes: bytes | str | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """All outputs of an ONNX graph (bytes or a file) on CPU for the named inputs."""
    require_onnx()
    import onnxruntime as ort

    source = str(model_bytes) if isinstance(model_bytes, Path) else model_bytes
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b|, with equal entries (including equal infinities, an 'ae' logvar) counting as 0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ONNX output has shape {a.shape}, torch's has {b.shape}")
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, and is masked out by a == b
        return float(np.where(a == b, 0.0, np.abs(a - b)).max(initial=0.0))


def _check(name: str, diff: float, tolerance: float) -> None:
    if not diff <= tolerance:  # also refuses NaN
        raise ValueError(f"{name}: onnxruntime differs from torch by {diff:.3g} (max abs) on a batch of "
                         f"{CHECK_BATCH}, more than {tolerance:g}; not written")


def _io(name: str, shape: tuple, dtype: str, **about: object) -> dict:
    return {"name": name, "shape": ["batch", *shape], "dtype": dtype, **about}


def describe(model: Autoencoder, encoder_diff: float, decoder_diff: float) -> dict:
    """The onnx.json record: what each graph takes and gives, and how pixels map to its inputs."""
    c, h, w = model.config.image_shape
    d = model.config.latent_dim
    colour = "grey (1 channel)" if c == 1 else "RGB"
    pixels = {"range": [0.0, 1.0], "layout": "NCHW", "channels": colour}
    return {
        "format": FORMAT,
        "opset": OPSET,
        "model": model.config.to_dict(),
        "encoder": {
            "file": ENCODER_FILE,
            "inputs": [_io("image", (c, h, w), "float32", **pixels)],
            "outputs": [_io("mean", (d,), "float32"),
                        _io("logvar", (d,), "float32", note="log of the posterior variance; -inf for an 'ae'")],
        },
        "decoder": {
            "file": DECODER_FILE,
            "inputs": [_io("z", (d,), "float32")],
            "outputs": [_io("image", (c, h, w), "float32", **pixels,
                            note="the likelihood's mean (sigmoid applied), not logits")],
        },
        "preprocess": (f"uint8 pixels / 255; the image's shorter side scaled to {h} (bilinear) and the centre "
                       f"square kept; {'RGB to grey by ITU-R 601-2 luma (PIL convert L)' if c == 1 else 'RGB'}"),
        "postprocess": "clip(round(image * 255), 0, 255) as uint8 gives the pixels `latentspace decode` writes",
        "check": {"batch": CHECK_BATCH, "tolerance": MAX_ABS_DIFF, "encoder_max_abs_diff": encoder_diff,
                  "decoder_max_abs_diff": decoder_diff},
        "latentspace_version": __version__,
    }


def export_onnx(
    model: Autoencoder, out_dir: str | Path, generator: torch.Generator | None = None,
    tolerance: float = MAX_ABS_DIFF,
) -> OnnxExport:
    """Write encoder.onnx, decoder.onnx and onnx.json into ``out_dir`` (atomically, file by file).

    Both graphs are run with onnxruntime on a random batch of CHECK_BATCH (images uniform in [0, 1), codes
    standard normal, drawn with ``generator``) and compared with torch; a max abs difference above
    ``tolerance`` raises ValueError before anything is written.
    """
    require_onnx()
    model = copy.deepcopy(model).to("cpu").eval()  # exported on CPU; the caller's model is left as it was
    c, h, w = model.config.image_shape
    d = model.config.latent_dim
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    encoder = _to_onnx(_EncoderGraph(model), torch.rand(2, c, h, w, generator=g), ["image"], ["mean", "logvar"])
    decoder = _to_onnx(_DecoderGraph(model), torch.randn(2, d, generator=g), ["z"], ["image"])

    x = torch.rand(CHECK_BATCH, c, h, w, generator=g)
    z = torch.randn(CHECK_BATCH, d, generator=g)
    with torch.inference_mode():
        posterior = model.encode(x)
        want_enc = (posterior.mean.numpy(), posterior.logvar.numpy())
        want_dec = model.decode(z).numpy()
    got_enc = run_onnx(encoder, {"image": x.numpy()})
    (got_dec,) = run_onnx(decoder, {"z": z.numpy()})
    encoder_diff = max(max_abs_diff(a, b) for a, b in zip(got_enc, want_enc))
    decoder_diff = max_abs_diff(got_dec, want_dec)
    _check(ENCODER_FILE, encoder_diff, tolerance)
    _check(DECODER_FILE, decoder_diff, tolerance)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / ENCODER_FILE, encoder)
    write_bytes(out / DECODER_FILE, decoder)
    write_json(out / META_FILE, describe(model, encoder_diff, decoder_diff))
    return OnnxExport(out / ENCODER_FILE, out / DECODER_FILE, out / META_FILE, encoder_diff, decoder_diff)
