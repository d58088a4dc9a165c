"""Pictures for humans: image grids (PNG) and metric plots over training steps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def image_grid(images: Tensor, num_columns: int | None = None, padding: int = 2) -> np.ndarray:
    """uint8 [N, C, H, W] → one uint8 array [rows·(H+p)+p, cols·(W+p)+p, C] with grey borders."""
    if images.dtype != torch.uint8:
        raise TypeError("image_grid expects uint8 images; use data.to_uint8 first")
    count, channels, height, width = images.shape
    columns = num_columns or max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        128,
        dtype=np.uint8,
    )
    array = images.permute(0, 2, 3, 1).cpu().numpy()
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = array[index]
    return grid


def save_image_grid(
    images: Tensor, path: Path, num_columns: int | None = None, scale: int = 1
) -> Path:
    """Write a PNG grid; `scale` enlarges small images (nearest neighbour) for viewing."""
    return save_picture(image_grid(images, num_columns), path, scale)


def save_picture(array: np.ndarray, path: Path, scale: int = 1) -> Path:
    """Write uint8 [H, W, C] (C = 1 or 3) as a PNG, enlarged `scale` times (nearest neighbour)."""
    picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if scale > 1:
        picture = picture.resize(
            (picture.width * scale, picture.height * scale), Image.Resampling.NEAREST
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def interleave(originals: Tensor, reconstructions: Tensor, num_columns: int = 8) -> Tensor:
    """Rows alternate originals / reconstructions so each column compares one image."""
    rows = []
    for start in range(0, originals.shape[0], num_columns):
        rows += [
            originals[start : start + num_columns],
            reconstructions[start : start + num_columns],
        ]
    return torch.cat(rows)


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (no display needed), imported on first
    use so that importing this module stays fast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: Path, dpi: int = 100) -> Path:
    """Lay out `figure`, write it as a PNG (creating the folder) and close it."""
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    pyplot().close(figure)
    return path


def plot_metrics(
    records: Sequence[dict[str, Any]], keys: Sequence[str], path: Path, title: str
) -> Path | None:
    """One figure with a line per (split, key) found in `records` versus step."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    plotted = False
    for key in keys:
        for split in ("train", "eval"):
            points = [(r["step"], r[key]) for r in records if r.get("split") == split and key in r]
            points = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
            if points:
                steps, values = zip(*points, strict=True)
                axis.plot(
                    steps, values, label=f"{split} {key}", marker="." if split == "eval" else ""
                )
                plotted = True
    if not plotted:
        plt.close(figure)
        return None
    axis.set_xlabel("step")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return save_figure(figure, path)
