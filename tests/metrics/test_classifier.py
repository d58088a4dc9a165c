"""The shipped Fashion-MNIST classifier and FD_cls on its features."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from unified_latents.data.datasets import (
    DataConfig,
    DatasetNotFoundError,
    InMemoryImages,
    load_split,
)
from unified_latents.metrics import classifier as classifier_module
from unified_latents.metrics.classifier import (
    FEATURE_DIM,
    WEIGHTS_FILE,
    FashionClassifier,
    classifier_features,
    classify,
    fd_cls,
    load_fashion_classifier,
    weights_fingerprint,
)

NUM_IMAGES = 1000  # the first test images; FD_cls compares their two halves


@pytest.fixture(scope="module")
def classifier() -> FashionClassifier:
    return load_fashion_classifier()


@pytest.fixture(scope="module")
def test_images() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        data = load_split(DataConfig(name="fashion-mnist"), "test")
    except DatasetNotFoundError as error:
        pytest.skip(str(error))
    assert isinstance(data, InMemoryImages)
    return data.images[:NUM_IMAGES], data.labels[:NUM_IMAGES]  # [N, 1, 32, 32] uint8, [N]


@pytest.fixture(scope="module")
def first_half_features(
    classifier: FashionClassifier, test_images: tuple[torch.Tensor, torch.Tensor]
) -> np.ndarray:
    return classifier_features(test_images[0][: NUM_IMAGES // 2], classifier=classifier)


def test_shipped_weights_match_their_provenance() -> None:
    assets = resources.files("unified_latents") / "assets"
    provenance = json.loads((assets / WEIGHTS_FILE.replace(".safetensors", ".json")).read_text())
    assert provenance["sha256"] == weights_fingerprint()
    assert provenance["test_accuracy"] >= 0.91


def test_loads_in_eval_mode(classifier: FashionClassifier) -> None:
    assert not any(module.training for module in classifier.modules())  # BatchNorm, dropout


def test_missing_weights_raise_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileNotFoundError, match="do not exist"):
        load_fashion_classifier(path=tmp_path / "absent.safetensors")
    monkeypatch.setattr(classifier_module, "WEIGHTS_FILE", "absent.safetensors")
    with pytest.raises(FileNotFoundError, match=r"train_classifier\.py"):
        load_fashion_classifier()


def test_accuracy_on_first_test_images(
    classifier: FashionClassifier, test_images: tuple[torch.Tensor, torch.Tensor]
) -> None:
    # Random weights give ~10%; the shipped classifier reaches ≥ 91% on all 10k test images.
    images, labels = test_images
    predictions = classify(images, classifier=classifier)
    assert predictions.shape == (NUM_IMAGES,) and predictions.dtype == torch.int64
    assert (predictions == labels).double().mean().item() >= 0.88


def test_features_are_deterministic_and_batch_independent(
    classifier: FashionClassifier, test_images: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images = test_images[0][:100]
    features = classifier_features(images, classifier=classifier)
    assert features.shape == (100, FEATURE_DIM) and features.dtype == np.float64
    np.testing.assert_array_equal(features, classifier_features(images, classifier=classifier))
    in_small_batches = classifier_features(images, batch_size=7, classifier=classifier)
    np.testing.assert_allclose(in_small_batches, features, rtol=1e-4, atol=1e-5)
    assert np.all(features >= 0.0)  # post-ReLU activations


def test_rejects_images_in_the_wrong_format(classifier: FashionClassifier) -> None:
    with pytest.raises(ValueError, match="uint8"):
        classify(torch.zeros(2, 1, 32, 32), classifier=classifier)  # float, not uint8
    with pytest.raises(ValueError, match="uint8"):
        classify(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), classifier=classifier)


def test_fd_cls_of_a_set_with_itself_is_zero(first_half_features: np.ndarray) -> None:
    assert abs(fd_cls(first_half_features, first_half_features)) < 1e-6


def test_fd_cls_separates_real_from_corrupted_images(
    classifier: FashionClassifier,
    first_half_features: np.ndarray,
    test_images: tuple[torch.Tensor, torch.Tensor],
) -> None:
    other_half = test_images[0][NUM_IMAGES // 2 :]
    # One fixed pixel permutation keeps each image's intensity histogram but destroys its shape.
    permutation = torch.randperm(other_half[0].numel(), generator=torch.Generator().manual_seed(0))
    shuffled = other_half.flatten(1)[:, permutation].reshape(other_half.shape)
    real_vs_real = fd_cls(
        first_half_features, classifier_features(other_half, classifier=classifier)
    )
    real_vs_shuffled = fd_cls(
        first_half_features, classifier_features(shuffled, classifier=classifier)
    )
    # Measured with the shipped weights: ≈ 0.3 (sampling noise of 500 vs 500) and ≈ 16.
    assert real_vs_real > 0.0
    assert real_vs_shuffled > 10.0 * real_vs_real
