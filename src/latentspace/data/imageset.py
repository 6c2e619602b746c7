"""The one in-memory image-set type every loader returns and every consumer reads."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class ImageSet:
    """A set of images held in memory as one uint8 array.

    images: (N, C, H, W) uint8. labels: (N,) int64 or None, indexing ``class_names``.
    factors: (N, F) float32 or None, one column per name in ``factor_names``; for a discrete
    factor, ``factor_values[name]`` lists the value names and the column holds their indices.
    names: optional (N,) source names (file paths for folders).
    """

    images: np.ndarray
    name: str
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    factors: np.ndarray | None = None
    factor_names: tuple[str, ...] = ()
    factor_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    names: tuple[str, ...] | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        im = self.images
        if im.dtype != np.uint8 or im.ndim != 4:
            raise ValueError(f"ImageSet.images must be uint8 (N, C, H, W), got {im.dtype} {im.shape}")
        if im.shape[1] not in (1, 3):
            raise ValueError(f"ImageSet.images must have 1 or 3 channels, got {im.shape[1]}")
        n = im.shape[0]
        if self.labels is not None and self.labels.shape != (n,):
            raise ValueError(f"ImageSet.labels must have shape ({n},), got {self.labels.shape}")
        if self.factors is not None:
            if self.factors.shape != (n, len(self.factor_names)):
                raise ValueError(
                    f"ImageSet.factors must have shape ({n}, {len(self.factor_names)}), got {self.factors.shape}"
                )
        unknown = set(self.factor_values) - set(self.factor_names)
        if unknown:
            raise ValueError(f"ImageSet.factor_values names unknown factors {sorted(unknown)}")
        if self.names is not None and len(self.names) != n:
            raise ValueError(f"ImageSet.names must have {n} entries, got {len(self.names)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: np.ndarray | slice, split: str | None = None, images: np.ndarray | None = None
               ) -> "ImageSet":
        """The images (and their labels, factors, names) at ``index``.

        A slice of a memory-mapped set is a view, so it stays mapped; otherwise the images are copied (a
        small subset must not keep a large in-memory array alive).
        images: ``self.images[index]`` already made elsewhere (e.g. mapped from a cache file), used as is.
        """
        idx = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        if images is None:
            mapped = isinstance(index, slice) and isinstance(self.images, np.memmap)
            images = self.images[index] if mapped else self.images[idx]
        elif images.shape[:1] != idx.shape:
            raise ValueError(f"subset: {len(images)} images given for {len(idx)} positions")
        return replace(
            self,
            images=images,
            labels=None if self.labels is None else self.labels[idx],
            factors=None if self.factors is None else self.factors[idx],
            names=None if self.names is None else tuple(self.names[i] for i in idx),
            split=split if split is not None else self.split,
        )

    def factor(self, name: str) -> np.ndarray:
        """One factor column by name, (N,) float32."""
        if self.factors is None or name not in self.factor_names:
            raise KeyError(f"{self.name} has no factor {name!r}; factors: {', '.join(self.factor_names) or 'none'}")
        return self.factors[:, self.factor_names.index(name)]

    def is_discrete(self, name: str) -> bool:
        return name in self.factor_values
