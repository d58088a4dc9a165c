"""The latent cache of an autoencoder run (`ul encode`, UL-SPEC §8): z_clean of the whole dataset,
encoded once by the EMA encoder, shard by shard, into AUTOENCODER_RUN/latents/{train,test}, with the
checkpoint it was encoded from (source.json), which base-model runs train on and are charged for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from tqdm import tqdm

from unified_latents.data.datasets import ImageDataset, load_split, to_model_range
from unified_latents.data.latent_cache import INDEX_FILE, shard_path, write_index, write_shard
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.runs.autoencoder import load_autoencoder
from unified_latents.runs.directory import RunError, latest_training_state, read_run_record
from unified_latents.training.distributed import (
    DistributedContext,
    init_distributed,
    resolve_device,
)


@torch.no_grad()
def encode_split(
    model: Autoencoder,
    dataset: ImageDataset,
    directory: Path,
    *,
    shard_size: int,
    batch_size: int,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> list[int]:
    """Encode `dataset` into shards under `directory`; existing shards are kept. Ranks take
    shards round-robin. Returns every shard's size (for `write_index`, once all ranks finish)."""
    total = len(dataset)
    num_shards = max(1, -(-total // shard_size))
    sizes = [min(shard_size, total - i * shard_size) for i in range(num_shards)]
    todo = [
        i
        for i in range(num_shards)
        if i % world_size == rank and not shard_path(directory, i).exists()
    ]
    bar = tqdm(
        total=sum(sizes[i] for i in todo),
        desc=f"encode {directory.name}",
        disable=not progress,
        unit="img",
    )
    for shard in todo:
        start = shard * shard_size
        latents, labels = [], []
        for offset in range(start, start + sizes[shard], batch_size):
            items = [
                dataset[i] for i in range(offset, min(offset + batch_size, start + sizes[shard]))
            ]
            images = torch.stack([image for image, _ in items])
            latents.append(model.encode(to_model_range(images).to(device)).cpu())
            labels.append(torch.tensor([label for _, label in items], dtype=torch.long))
            bar.update(len(items))
        write_shard(directory, shard, torch.cat(latents), torch.cat(labels))
    bar.close()
    return sizes


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
                    "logsnr_0": config.model.logsnr_0,
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


def encoded_from_step(autoencoder_run: Path) -> int | None:
    """The stage-1 step whose encoder made the latent cache (its source.json), if known."""
    source = latent_cache_dir(autoencoder_run) / "source.json"
    if not source.is_file():
        return None
    name = str(json.loads(source.read_text()).get("autoencoder_checkpoint", ""))
    digits = name.removeprefix("step_")
    return int(digits) if digits.isdigit() else None


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


def latent_cache_dir(autoencoder_run: Path) -> Path:
    return autoencoder_run / "latents"


def stale_latents(autoencoder_run: Path) -> str | None:
    """Why the latent cache of an autoencoder run no longer matches its newest checkpoint (stage
    1 was trained further after encoding, so a base model would train on latents the current
    decoder never saw), or None when it matches or there is no cache yet."""
    marker = latent_cache_dir(autoencoder_run) / "source.json"
    newest = latest_training_state(autoencoder_run)
    if not marker.is_file() or newest is None:
        return None
    encoded_from = json.loads(marker.read_text()).get("autoencoder_checkpoint")
    if encoded_from == newest[0].name:
        return None
    return (
        f"the latents in {latent_cache_dir(autoencoder_run)} come from {encoded_from}, but the "
        f"newest stage-1 checkpoint is {newest[0].name} (stage 1 was trained further)"
    )
