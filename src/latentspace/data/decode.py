"""One image file -> uint8 RGB pixels, or an ``ImageDecodeError`` (a ValueError) saying why not.

Only PNG, JPEG, WebP, BMP and GIF are decoded, whatever the file is called: these are the formats a folder
may hold (``data.scan.IMAGE_SUFFIXES``), and the rest of Pillow's ~40 parsers (some of which start
external programs) never see bytes from outside. A path is read only when it is a regular file, so a
FIFO or a device named ``x.png`` is refused instead of hanging the caller.
Any decoder failure becomes one ``ImageDecodeError`` whose ``reason`` is short enough to list per file.
"""
from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from latentspace.data.resize import fit_square, to_rgb
from latentspace.data.scan import NOT_REGULAR, open_regular

# Width x height read at most, from the header, before any pixel is decoded: a 40-megapixel photo (the largest
# phone cameras') decodes within a few hundred MB; Pillow's own bomb limit (89 MP) lets one file take over 1 GB.
MAX_PIXELS = 40_000_000
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # Pillow's names; JPEG includes MPO (camera JPEGs)
# What Pillow raises on bad bytes, beyond OSError/ValueError: SyntaxError (PNG chunks, GIF), EOFError (a frame
# that is not there), DecompressionBomb* (too many pixels; the warning when it is filtered to an error).
_PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
               Image.DecompressionBombWarning)


class ImageDecodeError(ValueError):
    """An image that cannot be decoded. ``reason``: a few words ("truncated", "cannot identify image")."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}" if source else reason)
        self.reason = reason


def reason_for(error: Exception) -> str:
    """A few words for a decoder's exception, the same for the same kind of damage."""
    if isinstance(error, UnidentifiedImageError):
        return "cannot identify image"
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "decompression bomb"
    text = str(error).splitlines()[0].strip() if str(error).strip() else type(error).__name__
    return "truncated" if "truncated" in text.lower() else text[:80]


def _pixels(fp: BinaryIO, size: int) -> np.ndarray:
    with Image.open(fp, formats=IMAGE_FORMATS) as img:
        limit = min(Image.MAX_IMAGE_PIXELS or MAX_PIXELS, MAX_PIXELS)
        if img.width * img.height > limit:
            raise Image.DecompressionBombError(f"{img.width}x{img.height} pixels is over the limit of {limit}")
        img.draft(None, (size, size))  # JPEG: let the decoder shrink by 1/2..1/8 while still covering size
        if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation: camera photos stored sideways
            img = ImageOps.exif_transpose(img)
        return np.asarray(fit_square(to_rgb(img), size)).transpose(2, 0, 1)


def decode_image(path: str | os.PathLike | BinaryIO, size: int) -> np.ndarray:
    """One image (a path or a binary file object) -> uint8 (3, size, size) RGB: shorter side scaled to
    ``size``, centre cropped; transparency over white; 16-bit grey scaled to 8 bits (see ``to_rgb``).

    Raises ``ImageDecodeError`` (a ValueError naming the file) for anything that is not a readable
    PNG/JPEG/WebP/BMP/GIF of at most MAX_PIXELS pixels, and OSError only when the file
    cannot be opened at all (missing, no permission).
    """
    if isinstance(path, (str, os.PathLike)):
        source = str(path)
        fp = open_regular(path)
        if fp is None:
            raise ImageDecodeError(source, NOT_REGULAR)
    else:
        source, fp = str(getattr(path, "name", "") or ""), path
    try:
        return _pixels(fp, size)
    except _PIL_ERRORS as e:  # the decoder's view of bad bytes; see _PIL_ERRORS for why each is here
        raise ImageDecodeError(source, reason_for(e)) from None
    finally:
        if fp is not path:
            fp.close()
