"""`ul encode`, `ul train-base` and `ul sample`: stage 2 and generation (UL-SPEC §8)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from unified_latents.commands.autoencoder import load_autoencoder
from unified_latents.commands.dry_run import base_dry_run
from unified_latents.commands.end_to_end import RUN_KIND as END_TO_END_KIND
from unified_latents.commands.end_to_end import load_end_to_end_generator
from unified_latents.commands.prompts import save_captioned_grid
from unified_latents.conditions import ConditionError, ConditionSource, dataset_captions
from unified_latents.data.datasets import load_split, to_uint8
from unified_latents.data.latent_cache import INDEX_FILE, LatentCache, write_index
from unified_latents.generation import sample_chunks
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.presets import BASE_PRESETS
from unified_latents.runs.base_model import (
    BaseRunConfig,
    BaseTask,
    build_base_model,
    check_condition,
    latent_cache_dir,
)
from unified_latents.runs.directory import (
    RunError,
    load_run,
    read_run_record,
    resolve_preset,
)
from unified_latents.runs.end_to_end import EndToEndRunConfig
from unified_latents.runs.latents import encode_split
from unified_latents.runs.pixel_model import PixelTask, load_pixel_generator
from unified_latents.runs.training import run_training
from unified_latents.training.distributed import (
    DistributedContext,
    init_distributed,
    resolve_device,
)
from unified_latents.training.seeding import seeded
from unified_latents.visualize import save_image_grid


def encode(
    autoencoder_run: Path,
    *,
    shard_size: int = 10_000,
    batch_size: int = 256,
    device_name: str = "auto",
    overwrite: bool = False,
    context: DistributedContext | None = None,
) -> Path:
    """Cache z_clean (EMA encoder) for the train and test splits; finished shards are kept."""
    context = context or init_distributed(resolve_device(device_name).type)
    device = resolve_device(device_name, context)
    model, config, loaded = load_autoencoder(autoencoder_run, device)
    cache = latent_cache_dir(autoencoder_run)
    source = {"autoencoder_checkpoint": loaded.path.name, "shard_size": shard_size}
    marker = cache / "source.json"

    def prepare_cache() -> None:
        if overwrite:
            shutil.rmtree(cache, ignore_errors=True)
        if marker.exists() and json.loads(marker.read_text()) != source:
            raise RunError(
                f"{cache} was encoded from {marker.read_text().strip()}, not "
                f"{source}; pass --overwrite to re-encode"
            )
        cache.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(source) + "\n")

    context.run_on_main(prepare_cache)
    for split in ("train", "test"):
        dataset = load_split(config.data, split)
        sizes = encode_split(
            model,
            dataset,
            cache / split,
            shard_size=shard_size,
            batch_size=batch_size,
            device=device,
            rank=context.rank,
            world_size=context.world_size,
            progress=context.is_main,
        )
        context.barrier()
        if context.is_main:
            write_index(
                cache / split,
                sizes,
                model.latent_shape,
                {
                    "class_names": list(dataset.class_names),
                    **source,
                    "logsnr_0": model.config.logsnr_0,
                },
            )
    if context.is_main:
        print(f"latents cached in {cache}")
    return cache


def ensure_encoded(autoencoder_run: Path, device_name: str, context: DistributedContext) -> Path:
    cache = latent_cache_dir(autoencoder_run)
    if not all((cache / split / INDEX_FILE).exists() for split in ("train", "test")):
        if context.is_main:
            print(f"no latent cache in {cache} yet: encoding the dataset first")
        encode(autoencoder_run, device_name=device_name, context=context)
    return cache


def base_task(config: BaseRunConfig, context: DistributedContext, device: torch.device) -> BaseTask:
    """Latent space: encode the dataset once if needed, check the condition, load the frozen
    autoencoder. Pixel space (`config.pixel`): the images themselves (runs/pixel_model.py)."""
    if config.pixel is not None:
        return PixelTask(config, device)
    ae_dir = Path(config.autoencoder_run)
    cache = ensure_encoded(ae_dir, config.train.device, context)
    check_condition(config.model.condition, LatentCache(cache / "train"))
    autoencoder, ae_config, _ = load_autoencoder(ae_dir, device)
    captions = None
    if config.model.condition.kind == "text-tokens":  # looked up by the latents' dataset index
        captions = dataset_captions(ae_config.data)
    return BaseTask(config, autoencoder, cache, device, captions)


def train_base(
    autoencoder_run: Path | None,
    preset: str,
    assignments: list[str],
    run_dir: Path | None,
    *,
    dry_run: bool = False,
) -> int:
    config = resolve_preset(BASE_PRESETS, preset, assignments)
    if autoencoder_run is not None:
        config = replace(config, autoencoder_run=str(autoencoder_run))
    if config.pixel is not None and config.autoencoder_run:
        raise RunError("a pixel-space preset trains on images: drop --autoencoder")
    if config.pixel is None and not config.autoencoder_run:
        raise RunError(
            "train-base needs --autoencoder AUTOENCODER_RUN_DIR "
            "(or a pixel-space preset such as --preset pixel-fashion-mnist)"
        )
    if dry_run:
        return base_dry_run(config)
    context = init_distributed(resolve_device(config.train.device).type)
    device = resolve_device(config.train.device, context)
    with seeded(config.train.seed):  # same seed, same initial weights
        task = base_task(config, context, device)  # before the run directory: fails early
    run_dir = run_dir or Path("runs") / f"base-{preset}"
    return run_training("base", config, task, run_dir, device=device, context=context)


def encoded_from_step(autoencoder_run: Path) -> int | None:
    """The stage-1 step whose encoder made the latent cache (its source.json), if known."""
    source = latent_cache_dir(autoencoder_run) / "source.json"
    if not source.is_file():
        return None
    name = str(json.loads(source.read_text()).get("autoencoder_checkpoint", ""))
    digits = name.removeprefix("step_")
    return int(digits) if digits.isdigit() else None


def load_generator_models(
    run_dir: Path, device: torch.device, step: int | None = None
) -> tuple[LatentDiffusion, Autoencoder, BaseRunConfig, ConditionSource]:
    """The EMA base model of a run (newest checkpoint, or that of `step`), the autoencoder
    checkpoint its latents were encoded with, its config and condition source."""
    config, loaded = load_run(run_dir, "base", BaseRunConfig, step)
    if config.pixel is not None:
        return load_pixel_generator(config, loaded, device)
    ae_dir = autoencoder_dir(run_dir, config.autoencoder_run)
    autoencoder, _, _ = load_autoencoder(ae_dir, device, encoded_from_step(ae_dir))
    base = build_base_model(config, autoencoder)
    base.load_state_dict(loaded.ema)
    class_names = latent_class_names(ae_dir, run_dir)
    conditions = ConditionSource(config.model.condition, class_names)
    return base.to(device).eval(), autoencoder, config, conditions


def autoencoder_dir(run_dir: Path, autoencoder_run: str) -> Path:
    """A base run's autoencoder: as recorded, or inside the run folder (`ul export` folders)."""
    inside = run_dir / autoencoder_run
    return (
        inside
        if not Path(autoencoder_run).is_absolute() and inside.is_dir()
        else Path(autoencoder_run)
    )


def latent_class_names(autoencoder_run: Path, run_dir: Path | None = None) -> list[str]:
    """The class names of the data the latents were encoded from: from the latent cache, or
    (an exported base run, `commands/export.py`) from the run's config.json."""
    index = latent_cache_dir(autoencoder_run) / "train" / INDEX_FILE
    if index.is_file():
        return list(json.loads(index.read_text()).get("class_names", []))
    if run_dir is not None:
        names = read_run_record(run_dir).get("class_names")
        if names is not None:
            return list(names)
    raise RunError(
        f"no latent cache in {latent_cache_dir(autoencoder_run)}; run `ul encode --run "
        f"{autoencoder_run}`"
    )


def load_sampling_models(
    run_dir: Path, device: torch.device
) -> tuple[LatentDiffusion, Autoencoder, BaseRunConfig | EndToEndRunConfig, ConditionSource]:
    """Like `load_generator_models`, for a base run or an end-to-end run (spec §9): both yield a
    base model, an autoencoder and a config whose `eval` holds the sampling settings."""
    if read_run_record(run_dir)["kind"] == END_TO_END_KIND:
        return load_end_to_end_generator(run_dir, device)
    return load_generator_models(run_dir, device)


def sampling_conditions(
    conditions: ConditionSource,
    num: int,
    class_label: int | None,
    prompt: str | Sequence[str] | None,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Conditions for `num` samples and the class index each one is meant to show (−1 if none):
    one class, prompts (`num` = the total, prompts in turn), or (by default) every class in
    turn."""
    if prompt is not None:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise ConditionError("no prompts given")
        chosen = [prompts[i % len(prompts)] for i in range(num)]
        return conditions.encode_prompts(chosen), torch.full((num,), -1)
    if conditions.kind == "none":
        if class_label is not None:
            raise ConditionError("this base model is unconditional; drop --class")
        return None, torch.full((num,), -1)
    classes = len(conditions.class_names)
    if class_label is not None and not 0 <= class_label < classes:
        raise ConditionError(f"--class must be in [0, {classes}), got {class_label}")
    labels = (
        torch.full((num,), class_label) if class_label is not None else torch.arange(num) % classes
    )
    return conditions.for_classes(labels), labels


def sample(
    run_dir: Path,
    *,
    num: int,
    class_label: int | None,
    prompt: str | Sequence[str] | None,
    overrides: dict[str, object],
    seed: int,
    device_name: str,
    out: Path | None,
) -> int:
    """`prompt`: one prompt, or several: `num` samples of each, one grid row per prompt with
    the prompt written under every image (commands/prompts.py).

    Under torchrun the ranks share the work (see `sample_chunks`: the samples do not depend
    on the number of ranks); rank 0 gathers exactly `num` images and writes the outputs."""
    context = init_distributed(resolve_device(device_name).type)
    device = resolve_device(device_name, context)
    base, autoencoder, config, conditions = load_sampling_models(run_dir, device)
    settings = replace(config.eval, **overrides)  # type: ignore[arg-type]
    prompts = [prompt] if isinstance(prompt, str) else None if prompt is None else list(prompt)
    per_prompt = num
    if prompts is not None:  # prompt-major: every prompt's samples in one row (or more)
        prompts = [text for text in prompts for _ in range(per_prompt)]
        num = len(prompts)
    cond, labels = sampling_conditions(conditions, num, class_label, prompts)
    start = time.perf_counter()
    chunks = sample_chunks(
        base,
        autoencoder,
        cond,
        conditions,
        settings,
        num=num,
        seed=seed,
        rank=context.rank,
        world_size=context.world_size,
    )
    gathered = context.gather_objects({k: to_uint8(v) for k, v in chunks.items()})
    if gathered is None:  # not rank 0: rank 0 writes the outputs
        return 0
    merged = {chunk: part for per_rank in gathered for chunk, part in per_rank.items()}
    images = torch.cat([merged[chunk] for chunk in sorted(merged)])
    assert images.shape[0] == num, (images.shape, num)
    seconds = time.perf_counter() - start
    out = out or run_dir / "samples" / f"sample_seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    columns = 10 if class_label is None and prompt is None and conditions.kind != "none" else 8
    if prompts is not None:
        grid = save_captioned_grid(images, prompts, out / "grid.png", min(per_prompt, 8))
    else:
        grid = save_image_grid(images, out / "grid.png", columns, scale=2)
    np.savez_compressed(out / "samples.npz", images=images.numpy(), labels=labels.numpy())
    meta = {
        "num": num,
        "class": class_label,
        "prompt": prompt if isinstance(prompt, str) or prompt is None else list(prompt),
        "seed": seed,
        "num_ranks": context.world_size,
        "seconds": seconds,
        "seconds_per_image": seconds / num,
        "base_steps": settings.base_steps,
        "decoder_steps": settings.decoder_steps,
        "sampler": settings.sampler,
        "guidance": settings.guidance,
        "guidance_interval": settings.guidance_interval,
    }
    (out / "sample.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(
        f"{num} samples in {seconds:.1f}s ({seconds / num:.3f} s/image); grid: {grid}; "
        f"arrays: {out / 'samples.npz'}"
    )
    return 0
