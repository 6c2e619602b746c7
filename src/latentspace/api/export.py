"""Out of the run: TensorBoard projector files of a split's codes with thumbnails and metadata, and the model
itself as ONNX graphs (models.onnx_export)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from latentspace.api.common import (
    Device,
    cached_codes,
    colouring,
    open_model,
)
from latentspace.data import ImageSet
from latentspace.latent.export import export_projector
from latentspace.models.onnx_export import OnnxExport, export_onnx
from latentspace.utils.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote: ``log_dir`` (give it to tensorboard --logdir), n codes of latent_dim values,
    and the metadata columns."""

    log_dir: Path
    n: int
    latent_dim: int
    columns: tuple[str, ...]


def projector_metadata(images: ImageSet) -> dict[str, list[str]]:
    """Metadata columns for the projector: label (class name), every factor (value name or number), source name."""
    columns: dict[str, list[str]] = {}
    if images.labels is not None:
        labels, names, _ = colouring(images)
        columns["label"] = [names[i] if i < len(names) else str(i) for i in labels]
    for name in images.factor_names:
        column = images.factor(name)
        if images.is_discrete(name):
            values = images.factor_values[name]
            columns[name] = [values[int(v)] for v in column]
        else:
            columns[name] = [f"{v:.4g}" for v in column]
    if images.names is not None:
        columns["name"] = list(images.names)
    return columns or {"index": [str(i) for i in range(len(images))]}


def export(
    run_dir: str | Path, out_dir: str | Path, split: str = "test", n: int | None = None, device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> ExportResult:
    """Write the first ``n`` codes of a split (all by default) with thumbnails and metadata as TensorBoard
    projector files into ``out_dir`` (latent.export)."""
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of codes, got {n}")
    run, model = open_model(run_dir, device)
    images, z = cached_codes(run, model, split, progress)
    if n is not None and n < len(images):
        images, z = images.subset(slice(0, n)), z[:n]
    metadata = projector_metadata(images)
    export_projector(out_dir, z, images.images, metadata, name=f"{images.name} {split}")
    return ExportResult(Path(out_dir), len(z), int(z.shape[1]), tuple(metadata))


def export_onnx_model(run_dir: str | Path, out_dir: str | Path, seed: int = 0) -> OnnxExport:
    """Write the run's encoder and decoder as ``encoder.onnx`` / ``decoder.onnx`` with ``onnx.json`` into
    ``out_dir``, after checking onnxruntime against torch on a random batch drawn with ``seed``."""
    _, model = open_model(run_dir, "cpu")  # exported from CPU weights whatever device the run trained on
    return export_onnx(model, out_dir, generator=torch.Generator().manual_seed(seed))
