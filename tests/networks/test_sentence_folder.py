"""networks/sentence_folder.py: checkpoint keys land on our modules, unsupported pipelines are
refused with the file that says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unified_latents.networks.sentence_folder import (
    MODULE_POOLING,
    MODULE_TRANSFORMER,
    check_pipeline,
    rename_checkpoint_key,
)


def test_bert_keys_are_renamed_to_our_modules() -> None:
    assert rename_checkpoint_key("embeddings.word_embeddings.weight") == "token_embedding.weight"
    assert rename_checkpoint_key("encoder.layer.3.attention.self.key.bias") == "layers.3.key.bias"
    assert rename_checkpoint_key("encoder.layer.0.output.LayerNorm.weight") == (
        "layers.0.mlp_norm.weight"
    )
    assert rename_checkpoint_key("decoder.unknown.weight") is None


def _folder(root: Path, modules: list[str], pooling: dict[str, bool]) -> Path:
    (root / "1_Pooling").mkdir(parents=True)
    (root / "modules.json").write_text(json.dumps([{"type": kind} for kind in modules]))
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return root


def test_only_mean_pooling_pipelines_are_read(tmp_path: Path) -> None:
    mean = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}
    plain = _folder(tmp_path / "mean", [MODULE_TRANSFORMER, MODULE_POOLING], mean)
    assert check_pipeline(plain) is False  # no Normalize module: embeddings are not unit norm
    cls = {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    with pytest.raises(ValueError, match="only mean pooling"):
        check_pipeline(_folder(tmp_path / "cls", [MODULE_TRANSFORMER, MODULE_POOLING], cls))
    with pytest.raises(ValueError, match="unsupported sentence-transformers pipeline"):
        check_pipeline(_folder(tmp_path / "other", [MODULE_POOLING], mean))
    with pytest.raises(FileNotFoundError, match="reinstall"):
        check_pipeline(tmp_path / "missing")
