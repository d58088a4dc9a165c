"""Decoding user images into uniform uint8 tensors, and counting the ones that cannot be decoded.

Every PIL mode is mapped the same way: 16/32-bit greyscale is rescaled (not clipped) to 8 bits,
palette and alpha images are composited on white, CMYK/YCbCr/LAB go to RGB, then to the
configured number of channels; finally a centre crop to a square and one Lanczos resize.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from unified_latents.data.containers import DataError, ImageDataset

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"})

_WHITE = (255, 255, 255, 255)

Item = TypeVar("Item")


class BadImageWarning(UserWarning):
    """An image file was skipped because it could not be decoded."""


class BadFileLog:
    """Counts attempted and undecodable files in one process and enforces `max_bad_fraction`.

    With a known total (folders), the error fires as soon as the bad files seen exceed the
    fraction of the *total*, which is certain and never premature. Without one (streamed
    shards), it fires once the observed fraction exceeds the limit over a sample large enough
    to expect ≥10 bad files at the limit, or at the end of a pass (`finish`). `kind` names the
    files in messages ("image", "video") and `category` is the warning class used. Indexed
    datasets also keep here the positions found undecodable (`known_bad`), to skip them.
    """

    def __init__(
        self,
        max_bad_fraction: float,
        total: int | None = None,
        kind: str = "image",
        category: type[UserWarning] = BadImageWarning,
    ) -> None:
        self.max_bad_fraction = max_bad_fraction
        self.total = total
        self.kind, self.category = kind, category
        self.attempted = 0
        self.bad: list[str] = []
        self.known_bad: set[int] = set()
        # Expected ≥10 bad files at the limit before judging a rate: fewer is mostly noise.
        self.min_sample = 0 if max_bad_fraction == 0 else math.ceil(10 / max_bad_fraction)

    def add_known(self, names: list[str]) -> None:
        """Count files found bad without decoding (e.g. empty files, already warned about)."""
        self.attempted += len(names)
        self.bad.extend(names)
        if self.total is not None and len(self.bad) > self.max_bad_fraction * self.total:
            self._raise(self.total)

    def good(self) -> None:
        self.attempted += 1

    def record_bad(self, name: str, reason: str) -> None:
        self.attempted += 1
        self.bad.append(name)
        warnings.warn(
            f"skipping unreadable {self.kind} {name}: {reason}", self.category, stacklevel=2
        )
        if self.total is not None:
            if len(self.bad) > self.max_bad_fraction * self.total:
                self._raise(self.total)
        elif self.attempted >= self.min_sample:
            self._check_rate()

    def read(
        self,
        position: int,
        name: str,
        read: Callable[[], Item],
        describe: Callable[[BaseException], str],
    ) -> Item | None:
        """`read()`, counted as good; or None, with `position` known bad and `name` counted
        and warned about, when it raises (decoders raise many types: PIL OSError, SyntaxError,
        ValueError…; PyAV InvalidDataError…)."""
        try:
            item = read()
        except Exception as error:
            self.known_bad.add(position)
            self.record_bad(name, describe(error))
            return None
        self.good()
        return item

    def first_readable(
        self, start: int, count: int, read: Callable[[int], Item | None]
    ) -> tuple[int, Item] | None:
        """(position, item) of the first of `count` positions from `start` on (wrapping round)
        that is not known bad and that `read` decodes (None: it cannot); None if none can. An
        undecodable item is so replaced by the next decodable one, a pure function of `start`."""
        for offset in range(count):
            candidate = (start + offset) % count
            if candidate in self.known_bad:
                continue
            item = read(candidate)
            if item is not None:
                return candidate, item
        return None

    def finish(self) -> None:
        """End of a pass over everything this process was given: judge the exact rate."""
        if self.attempted:
            self._check_rate()

    def _check_rate(self) -> None:
        if len(self.bad) > self.max_bad_fraction * self.attempted:
            self._raise(self.attempted)

    def _raise(self, denominator: int) -> None:
        shown = ", ".join(self.bad[:5]) + (" ..." if len(self.bad) > 5 else "")
        raise DataError(
            f"{len(self.bad)} of {denominator} {self.kind} files are unreadable, more than "
            f"data.max_bad_fraction={self.max_bad_fraction:g} allows (e.g. {shown}); "
            "remove or fix them, or raise the limit with --set data.max_bad_fraction=..."
        )


class LazyImageDataset(ImageDataset):
    """A map-style dataset that decodes items on demand and replaces an undecodable one by the
    next decodable one (`BadFileLog.first_readable`); `log` counts them in this process."""

    log: BadFileLog

    @property
    def bad_files(self) -> list[str]:
        """Files found bad while listing or indexing (empty or unreadable ones) and files this
        process failed to decode so far."""
        return list(self.log.bad)


CropBox = tuple[int, int, int]  # left, top, side: a square inside the image
CropChooser = Callable[[int, int], CropBox]  # (width, height) → the square to keep


def decode_image(
    source: Path | bytes, image_size: int, channels: int, crop: CropChooser | None = None
) -> Tensor:
    """Decode a file or encoded bytes to uint8 [channels, image_size, image_size].

    `crop` picks the square to keep (random-resized crops); None: the centred largest square.
    Raises whatever PIL raises for unreadable data; callers catch and count it.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    with warnings.catch_warnings():
        # PIL warns about e.g. palette transparency and EXIF quirks; we handle those cases.
        warnings.simplefilter("ignore")
        with Image.open(stream) as opened:
            if opened.format == "JPEG":
                # Let libjpeg decode at a reduced scale when the target is much smaller.
                # A random crop keeps a smaller square: decode at twice the size then.
                draft = image_size if crop is None else 2 * image_size
                opened.draft("RGB" if channels == 3 else "L", (draft, draft))
            opened.load()
            image = ImageOps.exif_transpose(opened)
    image = to_channels(image, channels)
    return square_resize(image, image_size, None if crop is None else crop(*image.size))


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Any PIL mode → "L" (channels=1) or "RGB" (channels=3), consistently across modes."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _high_depth_to_l(image)
    elif image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        image = _on_white(image)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    # PIL's own "I" → "L" conversion clips at 255, which turns 16-bit images white.
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F" and values.size and values.max() <= 1.0:
        values = values * 65535.0  # float images are conventionally in [0, 1]
    scaled = np.clip(values, 0, 65535) / 257.0  # 65535 ↦ 255 exactly
    return Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")


def _on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE)
    return Image.alpha_composite(background, rgba).convert("RGB")


def square_resize(image: Image.Image, image_size: int, box: CropBox | None = None) -> Tensor:
    """Crop to a square (`box`, else the centred largest one), resize with Lanczos, return
    uint8 [C, H, W]."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    if box is not None:
        left, top, side = box
    image = image.crop((left, top, left + side, top + side))
    if side != image_size:
        image = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())  # [C, H, W]


def random_square(width: int, height: int, seed: int, min_area: float) -> CropBox:
    """A square covering a uniform fraction in [min_area, 1] of the largest square, at a uniform
    position: a random-resized crop without aspect-ratio distortion [C]."""
    generator = torch.Generator().manual_seed(seed)
    area, x, y = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
    largest = min(width, height)
    side = max(1, round(largest * math.sqrt(min_area + (1.0 - min_area) * area)))
    return int(x * (width - side + 1)), int(y * (height - side + 1)), side


def describe_failure(error: BaseException) -> str:
    """A one-line reason for a warning (never a traceback)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
