"""Token-level text conditioning: MiniLM's per-token features and padding mask, the ViT's
cross-attention to them, and the empty caption as the NULL condition under guidance."""

from __future__ import annotations

import pytest
import torch

from unified_latents.conditions import ConditionSource
from unified_latents.diffusion.process import Prediction
from unified_latents.networks.conditioning import (
    ConditionConfig,
    ConditionEmbedding,
    drop_condition,
    null_condition,
)
from unified_latents.networks.text_encoder import SentenceEncoder
from unified_latents.networks.text_tokens import TextCrossAttention, encode_tokens, token_mask
from unified_latents.networks.vit import LatentViT, ViTConfig
from unified_latents.sampling.guidance import guided_denoiser

TOKENS = ConditionConfig(kind="text-tokens", text_tokens=12)


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder.from_installed_package()


def randomized(model: LatentViT) -> LatentViT:
    """Zero-initialised layers (output, gates, cross-attention outputs) made non-zero, so the
    condition changes the output."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model.eval()


def test_per_token_features_and_padding_mask(encoder: SentenceEncoder) -> None:
    texts = ["cat face, pet", "a much longer caption " * 10, "", "  "]
    features, mask = encode_tokens(encoder, texts, length=12)
    assert features.shape == (4, 12, 384) and features.dtype == torch.float32
    assert mask.shape == (4, 12) and mask.dtype == torch.bool
    ids = encoder.tokenize(["cat face, pet"])[0]
    assert mask[0].sum() == ids.shape[1]  # [CLS] cat face , pet [SEP]: real tokens only
    assert mask[1].all()  # truncated at 12 tokens
    assert not mask[2:].any() and not features[2:].any()  # empty captions: all padding
    assert not features[0][~mask[0]].any()  # padding rows are zero …
    assert torch.equal(token_mask(features), mask)  # … so the mask travels in the tensor
    # the same features as the encoder's own last layer, and independent of the batch
    alone, _ = encoder.encode_tokens(["cat face, pet"], length=12)
    assert torch.allclose(alone[0], features[0], atol=1e-5)
    tokenized = encoder.tokenize(["cat face, pet"])
    hidden = encoder.hidden_states(*tokenized)
    assert torch.allclose(hidden[0], features[0, : ids.shape[1]], atol=1e-5)


def test_cond_shapes_dropout_and_bad_input() -> None:
    null = null_condition(TOKENS, 3, torch.device("cpu"))
    assert null is not None and null.shape == (3, 12, 384) and not null.any()
    cond = torch.randn(64, 12, 384)
    dropped = drop_condition(cond, TOKENS, 0.5, torch.Generator().manual_seed(0))
    kept = token_mask(dropped).any(dim=1)
    assert 10 < int(kept.sum()) < 54  # whole captions are dropped, not single tokens
    assert torch.equal(dropped[kept], cond[kept]) and not dropped[~kept].any()
    embedding = ConditionEmbedding(TOKENS, 16)
    with pytest.raises(ValueError, match=r"\[B, 12, 384\]"):
        embedding(torch.randn(2, 384), 2)
    with pytest.raises(ValueError, match="text_tokens"):
        ConditionConfig(kind="text-tokens", text_tokens=0)


@pytest.mark.parametrize("inner", [False, True])
def test_vit_reads_tokens_and_ignores_padding(inner: bool) -> None:
    extra = {"inner_widths": (64,), "inner_depths": (2,)} if inner else {}
    config = ViTConfig(width=32, depth=2, heads=2, **extra)  # type: ignore[arg-type]
    model = randomized(LatentViT(config, 4, 8, TOKENS))
    z, logsnr = torch.randn(2, 4, 8, 8), torch.zeros(2)
    tokens = torch.randn(2, 12, 384)
    tokens[:, 5:] = 0  # five real tokens each
    out = model(z, logsnr, tokens)
    other = tokens.clone()
    other[:, 2] += 1.0
    assert not torch.allclose(out, model(z, logsnr, other))  # a token's content matters
    # the key-padding mask: whatever masked rows hold, the cross-attention ignores them
    assert model.cross is not None
    cross = model.cross["blocks"][0]
    assert isinstance(cross, TextCrossAttention)
    h, mask = torch.randn(2, 64, 32), token_mask(tokens)
    garbage = tokens + torch.randn_like(tokens) * (~mask)[..., None]
    assert torch.allclose(cross(h, tokens, mask), cross(h, garbage, mask), atol=1e-6)
    assert not torch.allclose(cross(h, tokens, mask), cross(h, garbage, token_mask(garbage)))
    assert torch.equal(model(z, logsnr, None), model(z, logsnr, torch.zeros_like(tokens)))


def test_old_condition_kinds_build_no_cross_attention() -> None:
    for condition in (ConditionConfig(), ConditionConfig(kind="text")):
        model = LatentViT(ViTConfig(width=32, depth=2, heads=2), 4, 8, condition)
        assert model.cross is None
        assert not any(key.startswith("cross") for key in model.state_dict())


def test_guidance_with_the_empty_caption_is_the_unconditional_branch(
    encoder: SentenceEncoder,
) -> None:
    model = randomized(LatentViT(ViTConfig(width=32, depth=2, heads=2), 4, 8, TOKENS))
    source = ConditionSource(TOKENS, ["emoji"])
    source._encoder = encoder
    empty = source.encode_prompts(["", ""])
    null = source.null(2, torch.device("cpu"))
    assert null is not None and torch.equal(empty, null)

    def denoise(z: torch.Tensor, logsnr: torch.Tensor, cond: torch.Tensor | None) -> Prediction:
        out = model(z, logsnr, cond)
        return Prediction(out, -out)

    z, logsnr = torch.randn(2, 4, 8, 8), torch.full((2,), 1.0)
    unconditional = denoise(z, logsnr, None).x_hat
    for scale in (0.0, 3.0):
        guided = guided_denoiser(denoise, empty, null, scale)(z, logsnr).x_hat
        assert torch.allclose(guided, unconditional, atol=1e-6)
    prompt = source.encode_prompts(["cat face", "cat face"])
    assert not torch.allclose(
        guided_denoiser(denoise, prompt, null, 3.0)(z, logsnr).x_hat, unconditional
    )
