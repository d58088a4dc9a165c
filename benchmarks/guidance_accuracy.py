"""Classifier accuracy of conditional samples vs guidance scale (issue 3's acceptance measurement).

    nice -n 15 .venv/bin/python benchmarks/guidance_accuracy.py --run runs/demo/base \
        --num 1000 --guidance 0,1,2,4

For a class-conditional base run, sample i asks for class i mod 10; for a text-conditional run it
gets the caption of class i mod 10 written with a *held-out* template (cycling through all of
`HELDOUT_TEMPLATES`, none seen in training). The shipped Fashion-MNIST classifier
(`metrics/classifier.py`) labels every sample; accuracy = fraction labelled as the asked class.
Samples use the run's own `eval` settings (steps, sampler, guidance interval) except the guidance
scale, and the same seed for every scale, so the scales differ only in guidance. Writes JSON
(default `<run>/guidance_accuracy.json`), one PNG grid per scale, and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from unified_latents.conditions import ConditionSource
from unified_latents.data.captions import HELDOUT_TEMPLATES, caption_table
from unified_latents.generation import sample_images
from unified_latents.metrics.classifier import classify, load_fashion_classifier
from unified_latents.runs.registry import kind_of
from unified_latents.training.distributed import resolve_device
from unified_latents.visualize import save_image_grid


def conditions_for(
    conditions: ConditionSource, num: int
) -> tuple[Tensor | None, Tensor, list[str]]:
    """(condition, asked class [num], prompts used) for `num` samples cycling through classes."""
    classes = len(conditions.class_names)
    labels = torch.arange(num) % classes
    if conditions.kind == "class":
        return labels, labels, []
    if conditions.kind == "text":
        table = caption_table(conditions.class_names, HELDOUT_TEMPLATES)
        # sample i: class i mod K, template (i div K) mod T, so every pair appears.
        prompts = [table[i % classes][(i // classes) % len(HELDOUT_TEMPLATES)] for i in range(num)]
        return conditions.encode_prompts(prompts), labels, prompts
    raise SystemExit("error: this base model is unconditional; accuracy needs class or text")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="base (or end-to-end) run dir")
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--guidance", default="0,1,2,4", help="comma-separated scales")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    scales = [float(text) for text in args.guidance.split(",")]
    device = resolve_device(args.device)
    base, autoencoder, config, conditions = kind_of(args.run).generator(args.run, device)
    cond, labels, prompts = conditions_for(conditions, args.num)
    cond = None if cond is None else cond.to(device)
    classifier = load_fashion_classifier(device)
    out = args.out or args.run / "guidance_accuracy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for scale in scales:
        settings = replace(config.eval, guidance=scale)
        start = time.perf_counter()
        images = sample_images(
            base, autoencoder, cond, conditions, settings, num=args.num, seed=args.seed
        )
        seconds = time.perf_counter() - start
        predicted = classify(images, classifier=classifier)
        per_class = [
            (predicted[labels == k] == k).float().mean().item()
            for k in range(len(conditions.class_names))
        ]
        grid = save_image_grid(
            images[:100], out.parent / f"guidance_{scale:g}_grid.png", 10, scale=2
        )
        rows.append(
            {
                "guidance": scale,
                "accuracy": (predicted == labels).float().mean().item(),
                "per_class_accuracy": per_class,
                "seconds_per_image": seconds / args.num,
                "grid": str(grid),
            }
        )
        print(f"guidance {scale:g}: accuracy {rows[-1]['accuracy']:.3f} ({seconds:.0f} s)")
    result = {
        "run": str(args.run),
        "condition": conditions.kind,
        "num_samples": args.num,
        "seed": args.seed,
        "base_steps": config.eval.base_steps,
        "decoder_steps": config.eval.decoder_steps,
        "sampler": config.eval.sampler,
        "guidance_interval": config.eval.guidance_interval,
        "templates": "held-out (never seen in training)" if prompts else None,
        "example_prompts": prompts[:12],
        "command": " ".join(["python", *sys.argv]),
        "results": rows,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| guidance | accuracy | s/image |\n|---|---|---|")
    for row in rows:
        print(f"| {row['guidance']:g} | {row['accuracy']:.3f} | {row['seconds_per_image']:.3f} |")
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
