"""The clip sources of a video folder (`data/video_files.py` has the layout): every video file and
folder of frames under a root, labelled by first-level subdirectory, and the train/test split
(`root/train` + `root/test` or `root/val`, else a holdout by a hash of each source's path)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from unified_latents.data.containers import DataError, DatasetNotFoundError, Split
from unified_latents.data.decode import IMAGE_SUFFIXES
from unified_latents.data.folder import split_layout
from unified_latents.data.video_decode import VIDEO_SUFFIXES, natural_key


@dataclass(frozen=True)
class ClipSource:
    """One video file or frame folder, its label (-1 = unlabelled) and, for folders, frames."""

    path: Path
    label: int
    frame_files: tuple[Path, ...] = ()


def list_sources(
    root: Path, split: Split, holdout_size: int
) -> tuple[list[ClipSource], tuple[str, ...]]:
    """Sources of `split` and the class names (see the module doc for the layout)."""
    if not root.is_dir():
        state = "is a file, not a directory" if root.exists() else "does not exist"
        raise DatasetNotFoundError(
            f"video folder {root} {state}; pass the directory that holds the videos or frame "
            "folders"
        )
    layout = split_layout(root, split)
    found = _walk(layout.directory)
    sources, class_names = _labelled(layout.directory, found, layout.class_names)
    if layout.holdout:
        sources = _holdout(sources, root, split, holdout_size)
    return sources, class_names


def _walk(root: Path) -> list[tuple[Path, tuple[Path, ...]]]:
    """(path, frame files) of every video file and frame folder under `root`, in name order.
    Symbolic links are followed, each real directory entered once (no link loops)."""
    found: list[tuple[Path, tuple[Path, ...]]] = []
    seen = set()
    for directory, subdirectories, names in os.walk(root, followlinks=True):
        status = os.stat(directory)
        if (status.st_dev, status.st_ino) in seen:
            subdirectories[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        here, visible = Path(directory), sorted(n for n in names if not n.startswith("."))
        frames = [here / n for n in visible if Path(n).suffix.lower() in IMAGE_SUFFIXES]
        if frames:
            frames.sort(key=lambda path: natural_key(path.name))
            found.append((here, tuple(frames)))
        found += [(here / n, ()) for n in visible if Path(n).suffix.lower() in VIDEO_SUFFIXES]
    if not found:
        raise DatasetNotFoundError(
            f"no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) or folders of frame images under "
            f"{root}"
        )
    return sorted(found, key=lambda item: item[0].as_posix())


def _labelled(
    root: Path, found: list[tuple[Path, tuple[Path, ...]]], classes: tuple[str, ...]
) -> tuple[list[ClipSource], tuple[str, ...]]:
    """Labels from first-level subdirectories if every source sits inside one, else -1."""
    parts = [path.relative_to(root).parts for path, _ in found]
    if all(len(part) > 1 for part in parts):
        class_names = classes or tuple(sorted({part[0] for part in parts}))
        label = {name: number for number, name in enumerate(class_names)}
        sources = [
            ClipSource(p, label[part[0]], f) for (p, f), part in zip(found, parts, strict=True)
        ]
        return sources, class_names
    return [ClipSource(path, -1, frames) for path, frames in found], ()


def _holdout(
    sources: list[ClipSource], root: Path, split: Split, holdout_size: int
) -> list[ClipSource]:
    # Rank by a hash of the path relative to the root: reproducible and order-independent.
    def rank(source: ClipSource) -> str:
        name = source.path.relative_to(root).as_posix()
        return hashlib.sha1(name.encode()).hexdigest()

    ranked = sorted(sources, key=rank)
    if len(ranked) < 2 and split == "test":
        raise DataError(
            f"{root} holds {len(ranked)} video: too few to hold one out for the test split "
            f"(at least 2 needed); add videos, or give {root}/train and {root}/test"
        )
    count = min(holdout_size, max(1, len(ranked) // 5)) if len(ranked) > 1 else 0
    chosen = ranked[:count] if split == "test" else ranked[count:]
    return sorted(chosen, key=lambda source: source.path.as_posix())
