"""Prompts for `ul sample` (`--prompt`, repeatable, and `--prompt-file`) and the captioned grid
that shows each sample above its prompt, so a person can judge how well images follow text."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from unified_latents.conditions import ConditionError
from unified_latents.visualize import image_grid

CELL_WIDTH = 128  # pixels per image in the captioned grid (small samples are enlarged)
LINE_HEIGHT = 12  # the default PIL bitmap font is 11 pixels tall
CHARACTER_WIDTH = 6
MAX_CAPTION_LINES = 4


def read_prompts(prompts: Sequence[str] | None, prompt_file: Path | None) -> list[str] | None:
    """`--prompt` values then the non-blank lines of `--prompt-file`; None if neither is given.
    An empty `--prompt ""` is kept: it is the NULL caption (unconditional sampling)."""
    if prompts is None and prompt_file is None:
        return None
    chosen = list(prompts or [])
    if prompt_file is not None:
        if not prompt_file.is_file():
            raise ConditionError(f"--prompt-file {prompt_file} does not exist")
        lines = prompt_file.read_text(encoding="utf-8").splitlines()
        chosen += [line.strip() for line in lines if line.strip()]
    if not chosen:
        raise ConditionError(f"--prompt-file {prompt_file} has no prompts (one per line)")
    return chosen


def wrap_caption(caption: str, width: int) -> list[str]:
    """`caption` in lines of at most `width` pixels of the default font (long ones end in ...)."""
    lines = textwrap.wrap(caption, max(1, width // CHARACTER_WIDTH)) or ["(empty prompt)"]
    if len(lines) > MAX_CAPTION_LINES:
        lines = [*lines[: MAX_CAPTION_LINES - 1], lines[MAX_CAPTION_LINES - 1][:-3] + "..."]
    return lines


def save_captioned_grid(
    images: Tensor, captions: Sequence[str], path: Path, num_columns: int
) -> Path:
    """uint8 [N, C, H, W] images in a grid of `num_columns`, each with its caption below it."""
    if images.shape[0] != len(captions):
        raise ValueError(f"{images.shape[0]} images but {len(captions)} captions")
    scale = max(1, CELL_WIDTH // images.shape[-1])
    cell_width = images.shape[-1] * scale
    wrapped = [wrap_caption(caption, cell_width) for caption in captions]
    text_height = LINE_HEIGHT * max(len(lines) for lines in wrapped) + 4
    image_height = images.shape[-2] * scale
    cell_height = image_height + text_height
    columns = max(1, min(num_columns, images.shape[0]))
    rows = math.ceil(images.shape[0] / columns)
    sheet = Image.new(
        "RGB", (columns * (cell_width + 4) + 4, rows * (cell_height + 4) + 4), "white"
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, lines in enumerate(wrapped):
        row, column = divmod(index, columns)
        left, top = 4 + column * (cell_width + 4), 4 + row * (cell_height + 4)
        array = image_grid(images[index : index + 1], 1, padding=0)
        picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert("RGB")
        sheet.paste(
            picture.resize((cell_width, image_height), Image.Resampling.NEAREST), (left, top)
        )
        for number, line in enumerate(lines):
            position = (left, top + image_height + 2 + number * LINE_HEIGHT)
            draw.text(position, line, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
