"""Export codes for TensorBoard's Embedding Projector: the files its plugin reads from a log directory.

    tensors.tsv               one code per line, tab-separated
    metadata.tsv              one row per code (a header row only when there is more than one column)
    sprite.png                all thumbnails in one square grid, at most 8192 x 8192 pixels
    projector_config.pbtxt    ties them together (protobuf text format)

View with `tensorboard --logdir <out_dir>` and open the Projector tab.
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from latentspace.data.transforms import to_float, to_uint8
from latentspace.utils.files import write_atomic, write_bytes

SPRITE_MAX = 8192  # TensorBoard refuses larger sprites


def _tsv_cell(value: object) -> str:
    """One metadata cell: tabs and newlines would break the table, so they become spaces."""
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def metadata_tsv(metadata: dict[str, Sequence], n: int) -> str:
    """Rows of ``metadata`` (column name -> n values) as TSV text; header only with several columns."""
    if not metadata:
        raise ValueError("metadata must have at least one column")
    for name, column in metadata.items():
        if len(column) != n:
            raise ValueError(f"metadata column {name!r} has {len(column)} values, expected {n} (one per code)")
    columns = list(metadata.values())
    lines = [] if len(columns) == 1 else ["\t".join(_tsv_cell(k) for k in metadata)]
    lines += ["\t".join(_tsv_cell(col[i]) for col in columns) for i in range(n)]
    return "\n".join(lines) + "\n"


def thumbnail_size(n: int, height: int, width: int, max_side: int = SPRITE_MAX) -> tuple[int, int]:
    """(h, w) of each thumbnail so a ceil(sqrt(n))-square grid fits ``max_side``; never enlarged."""
    grid = math.ceil(math.sqrt(n))
    scale = min(1.0, max_side / (grid * height), max_side / (grid * width))
    return max(1, math.floor(height * scale)), max(1, math.floor(width * scale))


def sprite(images: np.ndarray, max_side: int = SPRITE_MAX) -> np.ndarray:
    """uint8 (N, C, H, W) -> one uint8 (g*h, g*w, C) sprite, g = ceil(sqrt(N)), row-major, empty cells black."""
    n, c, height, width = images.shape
    h, w = thumbnail_size(n, height, width, max_side)
    if (h, w) != (height, width):
        images = to_uint8(torch.nn.functional.interpolate(to_float(images), size=(h, w), mode="area"))
    g = math.ceil(math.sqrt(n))
    cells = np.zeros((g * g, c, h, w), dtype=np.uint8)
    cells[:n] = images
    return cells.reshape(g, g, c, h, w).transpose(0, 3, 1, 4, 2).reshape(g * h, g * w, c)


def projector_config(name: str, with_metadata: bool, thumb_hw: tuple[int, int] | None) -> str:
    """The projector_config.pbtxt text for one embedding."""
    lines = ["embeddings {", f'  tensor_name: "{name}"', '  tensor_path: "tensors.tsv"']
    if with_metadata:
        lines.append('  metadata_path: "metadata.tsv"')
    if thumb_hw is not None:
        h, w = thumb_hw
        lines += ["  sprite {", '    image_path: "sprite.png"', f"    single_image_dim: {w}",
                  f"    single_image_dim: {h}", "  }"]
    return "\n".join(lines + ["}"]) + "\n"


def _png_bytes(pixels: np.ndarray) -> bytes:
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def export_projector(
    out_dir: str | Path,
    latents: np.ndarray,
    images: np.ndarray | None = None,
    metadata: dict[str, Sequence] | None = None,
    name: str = "latents",
) -> Path:
    """Write the projector files for codes (N, D), optional uint8 (N, C, H, W) images and metadata columns
    into ``out_dir`` (atomically, file by file); returns ``out_dir``, the TensorBoard log dir."""
    z = np.asarray(latents, dtype=np.float32)
    if z.ndim != 2 or len(z) == 0:
        raise ValueError(f"latents must be (N, D) with N >= 1, got shape {z.shape}")
    n = len(z)
    if images is not None and (images.dtype != np.uint8 or images.ndim != 4 or len(images) != n):
        raise ValueError(f"images must be uint8 ({n}, C, H, W) to match the latents, got {images.dtype} {images.shape}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "tensors.tsv", lambda p: np.savetxt(p, z, fmt="%.8g", delimiter="\t"))
    if metadata:
        write_atomic(out / "metadata.tsv", lambda p: p.write_text(metadata_tsv(metadata, n), encoding="utf-8"))
    thumb = None
    if images is not None:
        pixels = sprite(images)
        thumb = thumbnail_size(n, images.shape[2], images.shape[3])
        write_bytes(out / "sprite.png", _png_bytes(pixels))
    text = projector_config(name.replace('"', "'"), bool(metadata), thumb)
    write_atomic(out / "projector_config.pbtxt", lambda p: p.write_text(text, encoding="utf-8"))
    return out
