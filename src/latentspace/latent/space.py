"""Counting the possibility space: how many images of a given shape and bit depth exist, exactly.

An image of H x W pixels with C channels is a point on n = H*W*C axes, each axis taking one of m levels,
so there are m**n images. That number is usually far too large for floating point (28x28 grey at 256
levels has 1,889 digits), so it is computed here with integers, or, past EXACT_MAX_DIGITS digits, with
decimal arithmetic whose error is bounded and whose precision grows until every reported digit is certain.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Context, Decimal

import numpy as np

EXACT_MAX_DIGITS = 10_000  # keep the exact integer up to this many digits
LEADING_DIGITS = 10
ENUMERATE_MAX = 65_536  # images enumerate_space agrees to draw
MAX_LEVELS = 2**32  # values per axis; far past any image format, and it keeps the digit logic's guarantees


@dataclass(frozen=True)
class SpaceCount:
    """The number of images of ``shape`` (H, W, C) at ``levels`` values per axis: levels ** n_axes.

    exact: the count as an int when it has <= EXACT_MAX_DIGITS digits, else None. digits: its decimal
    length (always exact). leading: its first LEADING_DIGITS digits (fewer if it is shorter). log10_count:
    n_axes * log10(levels) as a float, for comparisons.
    """

    shape: tuple[int, int, int]
    levels: int
    n_axes: int
    digits: int
    leading: str
    exact: int | None
    log10_count: float

    @property
    def axes_times_values(self) -> int:
        """n * m: the number of (axis, value) pairs, which is NOT the number of images."""
        return self.n_axes * self.levels

    @property
    def explanation(self) -> str:
        """One sentence on why n * m is not the count."""
        n, m = self.n_axes, self.levels
        return (
            f"{n:,} axes x {m:,} values = {n * m:,} counts (axis, value) pairs, the choices for one pixel at a time; "
            f"an image picks a value on every axis at once, so the choices multiply: "
            f"{m} x {m} x ... x {m} ({n:,} factors) = {m}^{n}."
        )

    def scientific(self) -> str:
        """The count in scientific form from its certain leading digits, e.g. '1.089340450e+1888'."""
        mantissa = self.leading[0] + ("." + self.leading[1:] if len(self.leading) > 1 else "")
        return f"{mantissa}e+{self.digits - 1}"

    def exact_str(self) -> str | None:
        """All digits of the exact count (None past EXACT_MAX_DIGITS); Decimal avoids int->str's 4300-digit limit."""
        return None if self.exact is None else format(Decimal(self.exact), "f")


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    dims = tuple(int(s) for s in shape)
    if len(dims) == 2:
        dims = (*dims, 1)
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"shape must be (H, W) or (H, W, C) of positive integers, got {tuple(shape)}")
    return dims  # type: ignore[return-value]


def _check_levels(levels: int) -> int:
    if int(levels) != levels or not 2 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must be an integer in 2..2**32 (values per axis), got {levels}")
    return int(levels)


def _power_of_ten(m: int) -> int | None:
    """a if m == 10**a, else None."""
    a = len(str(m)) - 1
    return a if m == 10**a else None


def _digits_and_leading_from_logs(n: int, m: int, k: int) -> tuple[int, str]:
    """digits and first k digits of m**n without forming it, from L = n*log10(m) in decimal arithmetic.

    digits = floor(L) + 1, leading = floor(10 ** (frac(L) + k - 1)). L's error is bounded; when a floor
    falls within that bound of an integer, precision doubles. For m not a power of ten L is irrational
    and 10**(frac(L)+k-1) is an integer only if m**n has <= k significant digits, which for m not a power
    of ten needs 2**n < 10**k: so for n >= 34 (always, past EXACT_MAX_DIGITS with levels <= MAX_LEVELS) this ends.
    """
    a = _power_of_ten(m)
    if a is not None:  # m**n = 10**(a*n): the one case where the floors above sit exactly on integers
        digits = a * n + 1
        return digits, "1" + "0" * (min(k, digits) - 1)
    prec = len(str(n)) + k + 30
    for _ in range(16):
        ctx = Context(prec=prec)
        L = ctx.multiply(Decimal(n), ctx.log10(Decimal(m)))
        err_L = L * Decimal(10) ** (2 - prec)  # two correctly rounded steps, with a factor 10 to spare
        whole = int(L)
        frac = ctx.subtract(L, whole)  # exact at this precision: dropping the integer part frees digits
        t = ctx.multiply(ctx.add(frac, k - 1), ctx.ln(Decimal(10)))
        y = ctx.exp(t)  # in [10**(k-1), 10**k)
        err_y = y * (3 * err_L + Decimal(10) ** (3 - prec))
        y_whole = int(y)
        certain_digits = err_L < frac < 1 - err_L
        certain_leading = err_y < ctx.subtract(y, y_whole) < 1 - err_y
        if certain_digits and certain_leading:
            digits = whole + 1
            return digits, str(y_whole)[: min(k, digits)]
        prec *= 2
    raise ArithmeticError(f"could not settle the digits of {m}**{n} at {prec} digits of precision")


def count_space(shape: tuple[int, ...] = (28, 28, 1), levels: int = 256) -> SpaceCount:
    """Count the images of ``shape`` (H, W) or (H, W, C) with ``levels`` values per pixel channel."""
    dims = _check_shape(shape)
    m = _check_levels(levels)
    n = dims[0] * dims[1] * dims[2]
    log10_count = n * math.log10(m)
    exact = None
    if log10_count < EXACT_MAX_DIGITS + 1:  # float is good to far better than 1 digit here
        value = m**n
        sig = Decimal(value).as_tuple().digits
        digits, leading = len(sig), "".join(map(str, sig[:LEADING_DIGITS]))
        exact = value if digits <= EXACT_MAX_DIGITS else None
    else:
        digits, leading = _digits_and_leading_from_logs(n, m, LEADING_DIGITS)
    return SpaceCount(dims, m, n, digits, leading, exact, log10_count)


def latent_grid_points(d: int, k: int) -> int:
    """Points on a grid with ``k`` steps along each of ``d`` latent axes: k ** d."""
    if d < 1 or k < 1:
        raise ValueError(f"latent grid needs d >= 1 axes and k >= 1 steps, got d={d}, k={k}")
    return int(k) ** int(d)


def coverage_log10(n_images: int, count: SpaceCount) -> float:
    """log10 of the fraction of the space that ``n_images`` distinct images cover: log10(N) - n*log10(m)."""
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    return math.log10(n_images) - count.log10_count


def level_values(levels: int) -> np.ndarray:
    """``levels`` values spread evenly over 0..255 (uint8), e.g. 2 -> [0, 255], 3 -> [0, 128, 255]."""
    m = _check_levels(levels)
    if m > 256:
        raise ValueError(f"levels must be <= 256 to draw images, got {m}")
    return np.rint(np.linspace(0.0, 255.0, m)).astype(np.uint8)


def enumerate_space(shape: tuple[int, ...] = (2, 2, 1), levels: int = 2) -> np.ndarray:
    """Every image of a tiny space: uint8 (levels**n, C, H, W), image i spelling i in base ``levels``.

    Axes are read in (C, H, W) order, the first the most significant digit. Refuses more than
    ENUMERATE_MAX images.
    """
    h, w, c = _check_shape(shape)
    values = level_values(levels)
    m, n = len(values), h * w * c
    total = count_space((h, w, c), m)
    if total.exact is None or total.exact > ENUMERATE_MAX:
        size = f"{total.exact:,}" if total.digits <= 15 else f"about {total.scientific()}"
        raise ValueError(f"a {h}x{w}x{c} space at {m} levels has {size} images; enumerate_space draws at most "
                         f"{ENUMERATE_MAX:,} (try --shape 2x2 --levels 2)")
    powers = m ** np.arange(n - 1, -1, -1, dtype=np.int64)
    index = (np.arange(total.exact, dtype=np.int64)[:, None] // powers) % m
    return values[index].reshape(total.exact, c, h, w)
