"""Evaluation pieces with exact expectations: network passes of a sampling run (the basis of the
sampling FLOPs) and the Fashion-MNIST classifier metrics on real images."""

from __future__ import annotations

import pytest
import torch

from unified_latents.data.datasets import DataConfig, DatasetNotFoundError
from unified_latents.diffusion.schedules import LogSNRSchedule
from unified_latents.evaluation.base_model import classifier_metrics
from unified_latents.evaluation.compute import network_passes
from unified_latents.evaluation.fid import real_images

SCHEDULE = LogSNRSchedule(kind="cosine", logsnr_min=-15.0, logsnr_max=5.0)


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_a_sampling_run_makes_num_steps_plus_one_network_calls(sampler: str) -> None:
    assert network_passes(SCHEDULE, num_steps=7, sampler=sampler) == 8  # type: ignore[arg-type]


def test_guidance_doubles_the_rows_only_where_it_is_active() -> None:
    def passes(guidance: float, interval: tuple[float, float] | None = None) -> int:
        return network_passes(
            SCHEDULE, num_steps=9, sampler="ddim", guidance=guidance, guidance_interval=interval
        )

    assert passes(2.0) == 2 * 10  # conditional and unconditional rows at every call
    assert passes(1.0) == 10  # scale 1 is the conditional model alone
    assert passes(0.0) == 10  # scale 0 is the unconditional model alone
    assert passes(2.0, (100.0, 200.0)) == 10  # no λ of the grid inside the interval
    # λ grid: 10 values from −15 to 5; guided exactly at those inside [−5, 5]
    grid = SCHEDULE.logsnr(torch.linspace(1.0, 0.0, 10, dtype=torch.float64))
    inside = int(((grid >= -5.0) & (grid <= 5.0)).sum())
    assert 0 < inside < 10 and passes(2.0, (-5.0, 5.0)) == 10 + inside


def test_classifier_metrics_on_real_fashion_mnist() -> None:
    data = DataConfig(name="fashion-mnist", image_size=32, channels=1)
    try:
        test, labels = real_images(data, "test", 50)
        train, train_labels = real_images(data, "train", 50)
    except DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed")
    metrics, notes = classifier_metrics(test.images, labels, train, train_labels)
    if "FD_cls@50" not in metrics:  # e.g. the classifier weights are not built
        pytest.skip(notes["FD_cls@50"])
    assert metrics["classifier_accuracy"] > 0.8 and metrics["classifier_accuracy_real"] > 0.8
    assert 0 <= metrics["FD_cls@50"] < float("inf") and "not FID" in notes["FD_cls@50"]
    wrong, _ = classifier_metrics(test.images, (labels + 1) % 10, train, train_labels)
    assert wrong["classifier_accuracy"] < 0.2  # accuracy is w.r.t. the requested class
