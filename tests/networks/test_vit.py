"""The latent ViT (prior / base model) and its class/text conditioning with a NULL condition."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unified_latents.config import from_dict, to_dict
from unified_latents.networks.conditioning import (
    ConditionConfig,
    ConditionEmbedding,
    drop_condition,
    null_condition,
)
from unified_latents.networks.vit import LatentViT, ViTConfig
from unified_latents.runs.presets import BASE_PRESETS

TINY = ViTConfig(width=16, depth=2, heads=2, mlp_ratio=2.0)
CLASS = ConditionConfig(kind="class", num_classes=3)
TEXT = ConditionConfig(kind="text", text_dim=6)


def perturb_(module: nn.Module, seed: int = 0, scale: float = 0.1) -> None:
    """Add noise to every parameter, so zero-initialised layers stop hiding their inputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))


def tiny_vit(condition: ConditionConfig | None = None, patch_size: int = 1) -> LatentViT:
    torch.manual_seed(0)
    config = ViTConfig(width=16, depth=2, heads=2, mlp_ratio=2.0, patch_size=patch_size)
    return LatentViT(config, channels=3, size=4, condition=condition)


@pytest.mark.parametrize("patch_size", [1, 2])
def test_output_shape_and_exactly_zero_at_init(patch_size: int) -> None:
    vit = tiny_vit(patch_size=patch_size)
    out = vit(torch.randn(2, 3, 4, 4), torch.tensor([-3.0, 4.0]))
    assert out.shape == (2, 3, 4, 4)
    assert torch.equal(out, torch.zeros_like(out))  # zero-init output layer


def test_logsnr_conditioning_changes_output() -> None:
    vit = tiny_vit()
    perturb_(vit)
    z_t = torch.randn(1, 3, 4, 4).expand(2, 3, 4, 4)
    out = vit(z_t, torch.tensor([-5.0, 5.0]))
    assert not torch.allclose(out[0], out[1])


def test_wrong_shape_and_unexpected_cond_are_errors() -> None:
    vit = tiny_vit()
    with pytest.raises(ValueError, match="expects"):
        vit(torch.randn(2, 3, 8, 8), torch.zeros(2))
    with pytest.raises(ValueError, match="unconditional"):
        vit(torch.randn(2, 3, 4, 4), torch.zeros(2), torch.zeros(2, dtype=torch.long))


def test_class_conditioning_and_null_class() -> None:
    vit = tiny_vit(CLASS)
    perturb_(vit)
    z_t, logsnr = torch.randn(1, 3, 4, 4).expand(4, 3, 4, 4), torch.zeros(4)
    out = vit(z_t, logsnr, torch.tensor([0, 1, 2, 3]))  # 3 is NULL
    assert not torch.allclose(out[0], out[1])
    null = null_condition(CLASS, 4, torch.device("cpu"))
    assert null is not None and null.tolist() == [3, 3, 3, 3]
    torch.testing.assert_close(vit(z_t, logsnr, None), vit(z_t, logsnr, null))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        vit(z_t, logsnr, torch.tensor([0, 1, 2, 4]))


def test_text_conditioning_zero_row_is_the_learned_null() -> None:
    vit = tiny_vit(TEXT)
    perturb_(vit)
    z_t, logsnr = torch.randn(1, 3, 4, 4).expand(3, 3, 4, 4), torch.zeros(3)
    text = torch.nn.functional.normalize(torch.randn(3, 6), dim=1)
    text[2] = 0.0
    out = vit(z_t, logsnr, text)
    assert not torch.allclose(out[0], out[1])
    torch.testing.assert_close(out[2], vit(z_t, logsnr, None)[2])
    embedding = vit.condition_embedding
    assert isinstance(embedding, ConditionEmbedding)
    embedded = embedding(text, 3)
    assert embedded is not None
    torch.testing.assert_close(embedded[2], embedding.null_embedding()[0])


@pytest.mark.parametrize("config", [CLASS, TEXT])
def test_drop_condition_rate_and_seeding(config: ConditionConfig) -> None:
    batch = 4000
    if config.kind == "class":
        cond = torch.randint(0, config.num_classes, (batch,))
    else:
        cond = torch.nn.functional.normalize(torch.randn(batch, config.text_dim), dim=1)
    dropped = drop_condition(cond, config, 0.1, torch.Generator().manual_seed(1))
    null = null_condition(config, batch, torch.device("cpu"))
    assert null is not None
    is_null = (dropped == null).reshape(batch, -1).all(dim=1)
    kept = ~is_null
    assert abs(is_null.float().mean().item() - 0.1) < 0.02  # 4σ of a Binomial(4000, 0.1) rate
    assert torch.equal(dropped[kept], cond[kept])
    again = drop_condition(cond, config, 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(dropped, again)


def test_condition_config_validation_and_none_kind() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        ConditionConfig(kind="class")
    with pytest.raises(ValueError, match="kind"):
        ConditionConfig(kind="image")  # type: ignore[arg-type]
    none = ConditionConfig()
    assert null_condition(none, 2, torch.device("cpu")) is None
    assert ConditionEmbedding(none, 8)(None, 2) is None
    with pytest.raises(ValueError, match="drop_condition"):
        drop_condition(torch.zeros(2), none, 0.1, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("width", 0), ("depth", 0), ("heads", 3), ("mlp_ratio", 0.0), ("mlp_activation", "relu")],
)
def test_vit_config_validation(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        ViTConfig(**{field: value})  # type: ignore[arg-type]


def test_configs_saved_before_mlp_activation_existed_keep_the_tanh_gelu() -> None:
    """Stored config.json files from earlier runs lack the field; they must rebuild the network
    they were trained with, while the presets use exact GELU."""
    stored = to_dict(ViTConfig(width=8, heads=2))
    del stored["mlp_activation"]
    assert from_dict(ViTConfig, stored).mlp_activation == "gelu_tanh"
    assert BASE_PRESETS["fashion-mnist"]().model.network.mlp_activation == "gelu"
