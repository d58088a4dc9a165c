"""Small synthetic image files, folders and tar shards for the data tests."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def gradient_rgb(size: int = 24, seed: int = 0) -> Image.Image:
    """A colourful, non-uniform image (so truncating its encoding really loses data)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float64)
    noise = rng.integers(0, 40, size=(size, size, 3))
    array = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 128.0), axis=-1)
    return Image.fromarray(np.clip(array + noise, 0, 255).astype(np.uint8), mode="RGB")


def write_good_images(directory: Path, count: int, *, start: int = 0) -> list[Path]:
    """`count` decodable images alternating PNG and JPEG."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        image_format, suffix = ("PNG", ".png") if index % 2 == 0 else ("JPEG", ".jpg")
        path = directory / f"good_{index:03d}{suffix}"
        path.write_bytes(image_bytes(gradient_rgb(seed=index), image_format))
        paths.append(path)
    return paths


def write_bad_images(directory: Path) -> dict[str, Path]:
    """One file of every kind of damage the loader must survive."""
    directory.mkdir(parents=True, exist_ok=True)
    large = gradient_rgb(size=96, seed=99)
    png, jpeg = image_bytes(large, "PNG"), image_bytes(large, "JPEG")
    files = {
        "corrupt": (directory / "corrupt.png", bytes(range(256)) * 8),
        "truncated_png": (directory / "truncated.png", png[: len(png) // 2]),
        "truncated_jpeg": (directory / "truncated.jpg", jpeg[: len(jpeg) // 2]),
        "empty": (directory / "empty.png", b""),
        "text": (directory / "not_an_image.jpeg", b"this is a text file, not a JPEG\n"),
    }
    for path, payload in files.values():
        path.write_bytes(payload)
    return {name: path for name, (path, _) in files.items()}


def add_member(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))


def write_shards(
    directory: Path, num_shards: int, per_shard: int, *, corrupt: tuple[int, ...] = ()
) -> list[Path]:
    """WebDataset-style shards; sample i (global) has label i (.cls), a PNG unless i in corrupt."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(num_shards):
        path = directory / f"shard-{shard:04d}.tar"
        with tarfile.open(path, "w") as archive:
            for offset in range(per_shard):
                sample = shard * per_shard + offset
                key = f"{sample:06d}"
                payload = (
                    b"garbage" * 10
                    if sample in corrupt
                    else image_bytes(gradient_rgb(size=12, seed=sample), "PNG")
                )
                add_member(archive, f"{key}.png", payload)
                add_member(archive, f"{key}.cls", str(sample).encode())
        paths.append(path)
    return paths
