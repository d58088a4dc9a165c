"""Train the Fashion-MNIST classifier behind `classify` and FD_cls, and ship it as a package asset.

    nice -n 15 .venv/bin/python benchmarks/train_classifier.py

Trains `FashionClassifier` on the 60k training images (random ±2-pixel shifts and horizontal
flips), evaluates the final weights once on the 10k test images, and writes
`src/unified_latents/assets/fashion_mnist_classifier.safetensors` plus a provenance JSON beside it
(test accuracy, command, seed, epochs, date, sha256). No checkpoint selection on the test set:
the shipped weights are those after the last epoch. Runs single-threaded and deterministic.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from _provenance import REPO_ROOT, run_stamp
from unified_latents.data.datasets import DataConfig, InMemoryImages, load_split, to_model_range
from unified_latents.metrics.classifier import (
    WEIGHTS_FILE,
    FashionClassifier,
    classify,
    load_fashion_classifier,
    weights_fingerprint,
)

DEFAULT_OUTPUT_DIR = REPO_ROOT / "src" / "unified_latents" / "assets"
# The 28×28 images sit in a 2-pixel zero border, so a cyclic roll by ≤ 2 pixels loses nothing.
MAX_SHIFT_PIXELS = 2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1, help="peak SGD learning rate (one-cycle)")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    return parser.parse_args()


def load_fashion_mnist(split: str) -> InMemoryImages:
    data = load_split(DataConfig(name="fashion-mnist"), "train" if split == "train" else "test")
    assert isinstance(data, InMemoryImages)
    return data


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Per-image random shift by up to ±2 pixels (cyclic roll) and horizontal flip of [B,1,H,W]."""
    batch, _, height, width = images.shape
    shifts = torch.randint(-MAX_SHIFT_PIXELS, MAX_SHIFT_PIXELS + 1, (2, batch), generator=generator)
    flips = torch.rand(batch, generator=generator) < 0.5
    rows = (torch.arange(height)[None] - shifts[0][:, None]) % height  # [B, H]
    cols = (torch.arange(width)[None] - shifts[1][:, None]) % width  # [B, W]
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    index = torch.arange(batch)[:, None, None]
    return images[index, 0, rows[:, :, None], cols[:, None, :]][:, None]  # [B, 1, H, W]


def train(args: argparse.Namespace) -> tuple[FashionClassifier, dict[str, float]]:
    torch.manual_seed(args.seed)  # initialisation and dropout
    generator = torch.Generator().manual_seed(args.seed)  # shuffling and augmentation
    train_set = load_fashion_mnist("train")
    model = FashionClassifier()
    # channels_last makes the CPU convolutions ~2× faster; `Module.to` accepts memory_format at
    # run time but its type stubs do not list it.
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay
    )
    steps_per_epoch = len(train_set) // args.batch_size  # drop the last partial batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.2
    )
    start, wall_start = time.process_time(), time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=generator)
        total_loss = 0.0
        for step in range(steps_per_epoch):
            index = order[step * args.batch_size : (step + 1) * args.batch_size]
            images = augment(train_set.images[index], generator)
            x = to_model_range(images).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(
                model(x), train_set.labels[index], label_smoothing=args.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item()
        minutes = (time.process_time() - start) / 60
        print(
            f"epoch {epoch + 1}/{args.epochs}  train loss {total_loss / steps_per_epoch:.4f}  "
            f"cpu {minutes:.1f} min",
            flush=True,
        )
    timing = {
        "training_cpu_minutes": round((time.process_time() - start) / 60, 2),
        "training_wall_minutes": round((time.perf_counter() - wall_start) / 60, 2),
        "num_train_images": len(train_set),
    }
    return model.eval(), timing


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    model, timing = train(args)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    weights_path = args.output_dir / WEIGHTS_FILE
    # channels_last weights are not contiguous; safetensors stores plain row-major tensors.
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(weights_path), metadata={"format": "pt"})
    weights_path.chmod(0o644)  # safetensors creates the file owner-only; it is a shipped asset

    # Evaluate the saved file through the public API (uint8 → model range → argmax).
    test_set = load_fashion_mnist("test")
    predictions = classify(test_set.images, classifier=load_fashion_classifier(path=weights_path))
    correct = predictions == test_set.labels
    accuracy = correct.double().mean().item()
    per_class = {
        name: round(correct[test_set.labels == label].double().mean().item(), 4)
        for label, name in enumerate(test_set.class_names)
    }
    print(f"test accuracy {accuracy:.4f} on {len(test_set)} images; {timing}")
    provenance = {
        "model": "unified_latents.metrics.classifier.FashionClassifier",
        "weights_file": WEIGHTS_FILE,
        "sha256": weights_fingerprint(weights_path),
        "test_accuracy": round(accuracy, 4),
        "test_accuracy_per_class": per_class,
        "num_test_images": len(test_set),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "command": "python " + shlex.join(["benchmarks/train_classifier.py", *sys.argv[1:]]),
        "hyperparameters": {k: v for k, v in vars(args).items() if k != "output_dir"},
        "augmentation": f"random cyclic shift ±{MAX_SHIFT_PIXELS} px, random horizontal flip",
        **timing,
        **run_stamp(),
    }
    provenance_path = weights_path.with_suffix(".json")
    provenance_path.write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {weights_path} and {provenance_path}")


if __name__ == "__main__":
    main()
