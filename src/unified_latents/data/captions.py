"""Caption templates that turn class labels into sentences for text conditioning.

A text-conditioned model trains on captions built from `TRAIN_TEMPLATES`; `HELDOUT_TEMPLATES` are
phrasings never seen in training, used at sampling time to check that the model follows the meaning
of a prompt rather than memorised strings. Templates are `str.format` patterns with two fields:
`{a}` (the indefinite article, "a" or "an") and `{name}` (the class's display name).

Dataset class names ("T-shirt/top", "7") are mapped to natural-language display names
("t-shirt", "handwritten digit seven") by `display_name`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

TRAIN_TEMPLATES: tuple[str, ...] = (
    "a photo of {a} {name}.",
    "{a} {name}",
    "a picture of {a} {name}",
    "a black and white photo of {a} {name}.",
    "a low-resolution photo of {a} {name}.",
    "a close-up photo of {a} {name}.",
    "a grayscale image of {a} {name}.",
    "a small photo of {a} {name}.",
)

HELDOUT_TEMPLATES: tuple[str, ...] = (
    "{a} {name}, photographed",
    "an image showing {a} {name}",
    "this is {a} {name}.",
    "a centred shot of {a} {name} on a plain background",
    "here we see {a} {name}",
)

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Dataset class name (lower case) → display name. Names not listed are lower-cased, with "_"
# read as a space. Plural garments become "pair of ..." so that "a"/"an" stays grammatical.
DISPLAY_NAMES: dict[str, str] = {
    # Fashion-MNIST
    "t-shirt/top": "t-shirt",
    "trouser": "pair of trousers",
    "trousers": "pair of trousers",
    "pullover": "pullover",
    "dress": "dress",
    "coat": "coat",
    "sandal": "sandal",
    "shirt": "shirt",
    "sneaker": "sneaker",
    "bag": "bag",
    "ankle boot": "ankle boot",
    # MNIST: digits given as "7", "seven" or "7 - seven" (torchvision's spelling)
    **{str(digit): f"handwritten digit {word}" for digit, word in enumerate(_DIGIT_WORDS)},
    **{word: f"handwritten digit {word}" for word in _DIGIT_WORDS},
    **{f"{digit} - {word}": f"handwritten digit {word}" for digit, word in enumerate(_DIGIT_WORDS)},
    # CIFAR-10 names that read better otherwise
    "automobile": "car",
    "airplane": "aeroplane",
}

# Vowel letters that sound like a consonant ("a unicorn", "a one-piece") and silent h ("an hour").
_CONSONANT_SOUND_PREFIXES = ("uni", "use", "usu", "uti", "eu", "one", "once", "ufo")
_VOWEL_SOUND_PREFIXES = ("hour", "honest", "honour", "heir")


def display_name(class_name: str) -> str:
    """The natural-language name used in captions for a dataset's class name."""
    key = class_name.strip().lower()
    return DISPLAY_NAMES.get(key, key.replace("_", " "))


def indefinite_article(name: str) -> str:
    """'a' or 'an' for a lower-case noun phrase, by its first sound (a simple spelling rule)."""
    word = name.strip().lower()
    if word.startswith(_VOWEL_SOUND_PREFIXES):
        return "an"
    if word.startswith(_CONSONANT_SOUND_PREFIXES):
        return "a"
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def captions_for_class(class_name: str, templates: Sequence[str]) -> list[str]:
    """One caption per template for a class, in template order."""
    name = display_name(class_name)
    article = indefinite_article(name)
    return [template.format(a=article, name=name) for template in templates]


def caption_table(class_names: Sequence[str], templates: Sequence[str]) -> list[list[str]]:
    """Captions [class][template] for every class and template."""
    return [captions_for_class(class_name, templates) for class_name in class_names]


def random_captions(
    labels: Tensor, class_names: Sequence[str], generator: torch.Generator
) -> list[str]:
    """A caption per label [B], each from a training template drawn uniformly with `generator`."""
    table = caption_table(class_names, TRAIN_TEMPLATES)
    choices = torch.randint(
        0, len(TRAIN_TEMPLATES), (labels.numel(),), generator=generator, device=generator.device
    )
    return [
        table[label][choice]
        for label, choice in zip(labels.flatten().tolist(), choices.tolist(), strict=True)
    ]
