"""Resize, center-crop and channel conversion shared by the folder and IDX loaders.

One rule everywhere: the shorter side is scaled to ``size`` (PIL bilinear, which antialiases when
shrinking) and the centre ``size x size`` square is kept. Grey <-> RGB uses PIL's own luma weights
(ITU-R 601-2), so converting an array here gives the same pixels as ``Image.convert``.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

CHANNELS = (1, 3)
_WHITE = (255, 255, 255)


def check_size(size: int) -> int:
    """``size`` as a positive int, or a ValueError naming the bad value."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(f"size must be a positive number of pixels, got {size!r}")
    return int(size)


def check_channels(channels: int) -> int:
    """``channels`` as 1 or 3, or a ValueError naming the bad value."""
    if channels not in CHANNELS:
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    return int(channels)


def _wide_grey_to_l(img: Image.Image) -> Image.Image:
    """16-bit grey ("I;16*"; "I" holds the same 0..65535 values) -> "L" by the top byte (v >> 8), so a 16-bit
    gradient becomes the matching 8-bit one; Pillow's own convert clips at 255 and makes it near-white."""
    wide = np.asarray(img)
    out = Image.fromarray((np.clip(wide, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8), mode="L")
    key = img.info.get("transparency")  # PNG tRNS: one 16-bit grey value that means "transparent"
    if isinstance(key, int):
        alpha = np.where(wide == key, 0, 255).astype(np.uint8)
        out = Image.merge("LA", (out, Image.fromarray(alpha, mode="L")))
    return out


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image -> mode RGB; transparent pixels are laid over white (icons, sprites).

    16-bit and 32-bit integer grey are taken as 0..65535 and keep their top 8 bits. Float pixels ("F") have
    no agreed scale (0..1? 0..255? HDR?), so they are a ValueError rather than a guess.
    """
    if img.mode == "RGB":
        return img
    if img.mode == "F":
        raise ValueError("float pixels (mode F) have no agreed 0..255 scale; save as 8 or 16 bit")
    if img.mode == "I" or img.mode.startswith("I;16"):
        img = _wide_grey_to_l(img)
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def fit_square(img: Image.Image, size: int) -> Image.Image:
    """Scale the shorter side to ``size`` and keep the centre square: (size, size) image, same mode."""
    if img.size == (size, size):
        return img
    # ImageOps.fit crops the centre box and resizes it in one resampling pass: the same pixels as
    # resizing the whole image then cropping, without resampling the part that is thrown away.
    return ImageOps.fit(img, (size, size), method=Image.Resampling.BILINEAR, centering=(0.5, 0.5))


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size) by ``fit_square`` on each channel plane."""
    size = check_size(size)
    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        for k in range(c):
            out[i, k] = np.asarray(fit_square(Image.fromarray(images[i, k], mode="L"), size))
    return out


def rgb_to_grey(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 3, H, W) -> uint8 (N, 1, H, W) with PIL's fixed-point luma (bit-identical to convert("L"))."""
    rgb = images.astype(np.uint32)
    luma = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[:, None]


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, C, H, W) -> uint8 (N, channels, H, W): grey is repeated to RGB, RGB becomes luma."""
    channels = check_channels(channels)
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1:
        return np.repeat(images, 3, axis=1)
    if have == 3:
        return rgb_to_grey(images)
    raise ValueError(f"images must have 1 or 3 channels, got {have}")


def is_grey(images: np.ndarray) -> bool:
    """True when every pixel of uint8 (N, 3, H, W) has R == G == B (storing one channel loses nothing)."""
    return bool(np.array_equal(images[:, 0], images[:, 1]) and np.array_equal(images[:, 1], images[:, 2]))
