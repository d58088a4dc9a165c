"""A small Fashion-MNIST classifier shipped with the package, and FD_cls on its features.

Two uses for generated 32×32 greyscale samples (uint8 [N, 1, 32, 32], the format of
`load_split(DataConfig(name="fashion-mnist"), ...)`):

- `classify`: predicted labels, e.g. to check that class-conditional samples show their class.
- `fd_cls`: the Fréchet distance between Gaussians fitted to the classifier's 128-d penultimate
  features. **FD_cls is not FID**: it is a fast, Fashion-MNIST-specific proxy whose values are
  not comparable to FID (Inception features) or to FD_cls with any other classifier weights.

The weights (`assets/fashion_mnist_classifier.safetensors`) are produced by
`benchmarks/train_classifier.py`; the JSON beside them records accuracy, command, seed and date.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as load_safetensors_bytes
from torch import Tensor, nn

from unified_latents.data.datasets import to_model_range
from unified_latents.metrics.frechet import frechet_distance, statistics_from_features

__all__ = [
    "FEATURE_DIM",
    "NUM_CLASSES",
    "WEIGHTS_FILE",
    "FashionClassifier",
    "classifier_features",
    "classify",
    "fd_cls",
    "load_fashion_classifier",
    "weights_fingerprint",
]

FEATURE_DIM = 128
NUM_CLASSES = 10
IMAGE_SHAPE = (1, 32, 32)
WEIGHTS_FILE = "fashion_mnist_classifier.safetensors"


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv → BatchNorm → ReLU → 2×2 max-pool (halves the side)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class FashionClassifier(nn.Module):
    """CNN for [N, 1, 32, 32] images in model range [-1, 1]: three conv blocks (32→16→8→4 pixels),
    a 128-d feature layer and a linear head over the 10 classes."""

    def __init__(self, channels: tuple[int, int, int] = (32, 64, 128), dropout: float = 0.3):
        super().__init__()
        first, second, third = channels
        self.trunk = nn.Sequential(
            _conv_block(IMAGE_SHAPE[0], first),  # [N, c1, 16, 16]
            _conv_block(first, second),  # [N, c2, 8, 8]
            _conv_block(second, third),  # [N, c3, 4, 4]
            nn.Flatten(),
        )
        side = IMAGE_SHAPE[1] // 8
        self.feature_layer = nn.Sequential(
            nn.Linear(third * side * side, FEATURE_DIM, bias=False),
            nn.BatchNorm1d(FEATURE_DIM),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations [N, 128] (what the head sees, before dropout)."""
        return self.feature_layer(self.trunk(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits [N, 10]."""
        return self.head(self.dropout(self.features(x)))


def _weights_bytes() -> bytes:
    weights = resources.files("unified_latents") / "assets" / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(
            f"the shipped classifier weights unified_latents/assets/{WEIGHTS_FILE} are missing; "
            "reinstall the package or regenerate them with "
            "`python benchmarks/train_classifier.py`"
        )
    return weights.read_bytes()


def weights_fingerprint(path: str | Path | None = None) -> str:
    """sha256 of the classifier weights: FD_cls values are only comparable under the same one."""
    data = Path(path).read_bytes() if path is not None else _weights_bytes()
    return hashlib.sha256(data).hexdigest()


def load_fashion_classifier(
    device: str | torch.device = "cpu", path: str | Path | None = None
) -> FashionClassifier:
    """The shipped classifier (or the weights at `path`) in eval mode on `device`."""
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"classifier weights {path} do not exist")
    data = Path(path).read_bytes() if path is not None else _weights_bytes()
    classifier = FashionClassifier()
    classifier.load_state_dict(load_safetensors_bytes(data), strict=True)
    return classifier.to(device).eval()


def _checked_images(images_uint8: Tensor | np.ndarray) -> Tensor:
    images = torch.as_tensor(images_uint8)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != IMAGE_SHAPE or images.dim() != 4:
        raise ValueError(
            f"expected uint8 images [N, 1, 32, 32] (Fashion-MNIST as `load_split` returns it), "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    return images


@torch.inference_mode()
def _batched(
    images_uint8: Tensor | np.ndarray,
    classifier: FashionClassifier | None,
    batch_size: int,
    want_features: bool,
) -> Tensor:
    images = _checked_images(images_uint8)
    if classifier is None:
        classifier = load_fashion_classifier()
    if classifier.training:
        raise ValueError("the classifier is in training mode; call .eval() first")
    device = next(classifier.parameters()).device
    outputs = []
    for start in range(0, images.shape[0], batch_size):
        x = to_model_range(images[start : start + batch_size].to(device))  # [B, 1, 32, 32]
        out = classifier.features(x) if want_features else classifier(x).argmax(dim=1)
        outputs.append(out.cpu())
    if not outputs:
        return torch.zeros((0, FEATURE_DIM)) if want_features else torch.zeros(0, dtype=torch.long)
    return torch.cat(outputs)


def classify(
    images_uint8: Tensor | np.ndarray,
    batch_size: int = 500,
    classifier: FashionClassifier | None = None,
) -> Tensor:
    """Predicted labels int64 [N] of uint8 images [N, 1, 32, 32] (loads the shipped classifier
    unless one is passed)."""
    return _batched(images_uint8, classifier, batch_size, want_features=False)


def classifier_features(
    images_uint8: Tensor | np.ndarray,
    batch_size: int = 500,
    classifier: FashionClassifier | None = None,
) -> np.ndarray:
    """Penultimate features float64 [N, 128] of uint8 images [N, 1, 32, 32], for `fd_cls`."""
    return _batched(images_uint8, classifier, batch_size, want_features=True).double().numpy()


def fd_cls(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FD_cls: Fréchet distance between Gaussians fitted to two sets of classifier features.

    A fast, dataset-specific proxy for sample quality on Fashion-MNIST. It is NOT FID: the
    features come from this small classifier, not Inception, so values are not comparable to FID
    or across classifier weights (see `weights_fingerprint`). Like FID it is biased upward for
    small sets; compare values computed with the same numbers of samples.
    """
    return frechet_distance(
        statistics_from_features(features_a), statistics_from_features(features_b)
    )
