"""MAGI-1 text conditioning: tiny T5 in the official folder layout, 800-token embeddings and masks,
caption cleaning, special tokens exactly as upstream, per-prompt caches, error messages."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from pipeline.generators.base import GeneratorLoadError
from pipeline.generators.magi1.text import (
    T5_SUBFOLDER,
    MagiTextEncoder,
    SpecialTokenOptions,
    SpecialTokens,
    caption_rows,
    null_caption_rows,
    preprocess_prompt,
)
from pipeline.tiny_models.magi1 import write_tiny_special_tokens, write_tiny_t5

torch.set_num_threads(2)
WIDTH = 32  # d_model of the tiny T5


@pytest.fixture(scope="module")
def t5_root(tmp_path_factory):
    return write_tiny_t5(tmp_path_factory.mktemp("t5") / "t5", seed=0)


@pytest.fixture(scope="module")
def tokens_path(tmp_path_factory):
    return write_tiny_special_tokens(tmp_path_factory.mktemp("st") / "special_tokens.npz", WIDTH, seed=0)


@pytest.fixture(scope="module")
def encoder(t5_root, tokens_path):
    return MagiTextEncoder.from_folder(t5_root, tokens_path, device="cpu", dtype=torch.float32)


def _f16(a):
    return torch.from_numpy(np.asarray(a).astype(np.float16).astype(np.float32))


# ------------------------------------------------------------------------------------ encoding
def test_official_layout_written(t5_root):
    folder = t5_root / T5_SUBFOLDER
    for name in (
        "config.json",
        "pytorch_model.bin.index.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "tokenizer_config.json",
    ):
        assert (folder / name).is_file(), name


def test_embeddings_shapes_masks_and_values(encoder, t5_root):
    prompt = "A Red Ball rolls off the TABLE."
    embs, masks = encoder.encode([prompt])
    assert embs.shape == (1, 1, 800, WIDTH) and embs.dtype == torch.float32
    assert masks.shape == (1, 800) and masks.dtype == torch.int64
    # independent path: clean text, tokenize with the folder's tokenizer, run the shard weights
    from transformers import AutoTokenizer, T5EncoderModel

    folder = t5_root / T5_SUBFOLDER
    tok = AutoTokenizer.from_pretrained(str(folder))
    ids = tok(
        ["a red ball rolls off the table."], max_length=800, padding="max_length", truncation=True, return_tensors="pt"
    )
    n = int(ids["attention_mask"].sum())
    assert ids["input_ids"][0, n - 1] == 1  # </s> closes the prompt
    assert masks[0, :n].eq(1).all() and masks[0, n:].eq(0).all()
    state = {}
    for shard in ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"):
        state.update(torch.load(folder / shard, weights_only=True))
    for k, v in encoder.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    ref_model = T5EncoderModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    with torch.no_grad():
        ref = ref_model(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]).last_hidden_state
    torch.testing.assert_close(embs[:, 0], ref, rtol=1e-5, atol=1e-5)
    # batch order is kept and equals single-prompt encoding
    e2, m2 = encoder.encode(["a cube slides", prompt])
    torch.testing.assert_close(e2[1:], embs)
    assert torch.equal(m2[1:], masks)


def test_long_prompt_is_truncated_to_800(encoder):
    embs, masks = encoder.encode(["ball " * 2000])
    assert embs.shape[2] == 800 and int(masks.sum()) == 800


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("A Red Ball rolls off the TABLE.", "a red ball rolls off the table."),
        ("Visit https://example.com/page now!!! #123 <b>Bold</b> &amp; stuff", "visit now!!! bold stuff"),
        ("this-is-my-cute-cat_and_more “quoted” ‘single’", 'this is my cute cat and more "quoted" \'single'),
        ("jc6640 file.png 1920x1080 page 12 free shipping a*b(c)", "a b c"),
    ],
)
def test_caption_cleaning_matches_upstream(raw, clean):
    # expected strings produced by the official T5Embedder.text_preprocessing (cleaned twice)
    assert preprocess_prompt(raw) == clean
    assert preprocess_prompt("  MiXeD  ", clean=False) == "mixed"


# ------------------------------------------------------------------------------ special tokens
def test_special_tokens_as_upstream(encoder, tokens_path):
    raw = np.load(tokens_path)
    other = _f16(raw["other_tokens"])
    embs, masks = encoder.encode(["a ball falls"])
    n = int(masks.sum())
    rows, rmask = caption_rows(embs, masks, 3, special_tokens=encoder.special_tokens, options=SpecialTokenOptions())
    assert rows.shape == (1, 3, 800, WIDTH) and rmask.shape == (1, 3, 800)
    for i in range(3):
        # PAD_HQ then PAD_DURATION, each prepended: [duration(3 - i), HQ, text[:798]]
        torch.testing.assert_close(rows[0, i, 0], other[7 + (3 - i) - 1])
        torch.testing.assert_close(rows[0, i, 1], other[1])
        torch.testing.assert_close(rows[0, i, 2:], embs[0, 0, :798])
        assert rmask[0, i, : n + 2].eq(1).all() and rmask[0, i, n + 2 :].eq(0).all()
    # token values went through float16 (upstream casts the npz to float16)
    assert not torch.equal(other[1], torch.from_numpy(raw["other_tokens"][1]).float())
    # duration clips at 8 chunks remaining; the last chunk says 1 remains
    rows, _ = caption_rows(embs, masks, 10, special_tokens=encoder.special_tokens)
    torch.testing.assert_close(rows[0, 0, 0], other[14])
    torch.testing.assert_close(rows[0, 2, 0], other[14])
    torch.testing.assert_close(rows[0, 3, 0], other[13])
    torch.testing.assert_close(rows[0, 9, 0], other[7])
    # no tokens: the prompt repeated per chunk, mask unchanged
    rows, rm = caption_rows(embs, masks, 2, options=SpecialTokenOptions.none())
    torch.testing.assert_close(rows, embs.expand(1, 2, 800, WIDTH))
    assert torch.equal(rm, masks[:, None].expand(1, 2, 800))


def test_all_special_tokens_order_and_clean_chunks(encoder, tokens_path):
    raw = np.load(tokens_path)
    other = _f16(raw["other_tokens"])
    embs, masks = encoder.encode(["a ball falls"])
    opts = SpecialTokenOptions(
        hq=True,
        duration=True,
        static_first_frames=True,
        dynamic_first_frames=True,
        borderness=True,
        three_d_model=True,
        two_d_anime=True,
    )
    null = torch.randn(800, WIDTH)
    rows, rm = caption_rows(
        embs, masks, 4, special_tokens=encoder.special_tokens, options=opts, clean_chunks=1, null_caption_embedding=null
    )
    # clean prefix chunk: null caption, mask all zero
    torch.testing.assert_close(rows[0, 0], null)
    assert rm[0, 0].eq(0).all()
    # applied static, dynamic, borderness, hq, 3d, anime, duration -> reversed in front
    expect = [other[7 + 3 - 1], other[16], other[15], other[1], other[4], other[3], other[2]]
    for k, tok in enumerate(expect):
        torch.testing.assert_close(rows[0, 1, k], tok)
    torch.testing.assert_close(rows[0, 1, 7:], embs[0, 0, :793])
    torch.testing.assert_close(rows[0, 3, 0], other[7])  # last of 3 denoised chunks: 1 remains


def test_null_rows_and_negative_tokens(tokens_path):
    st = SpecialTokens.from_npz(tokens_path)
    raw = np.load(tokens_path)
    null = torch.randn(800, WIDTH)
    rows, masks = null_caption_rows(null, 3)
    assert rows.shape == (1, 3, 800, WIDTH) and masks.dtype == torch.int64
    assert masks[:, :, :50].eq(1).all() and masks[:, :, 50:].eq(0).all()
    torch.testing.assert_close(rows[0, 2], null)
    neg, nm = null_caption_rows(null, 2, special_tokens=st, options=SpecialTokenOptions(negative=True))
    # CAPTION, LOGO, TRANS, BORDERNESS applied in that order -> BORDERNESS first
    for k, tok in enumerate(
        [raw["other_tokens"][4], raw["other_tokens"][0], raw["logo_token"][0], raw["caption_token"][0]]
    ):
        torch.testing.assert_close(neg[0, 1, k], _f16(tok))
    torch.testing.assert_close(neg[0, 1, 4:], null[:796])
    assert torch.equal(nm, masks[:, :2])


def test_special_token_errors(tmp_path, t5_root, encoder):
    with pytest.raises(GeneratorLoadError, match="does not exist"):
        SpecialTokens.from_npz(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, caption_token=np.zeros((1, WIDTH)))
    with pytest.raises(GeneratorLoadError, match="lacks arrays"):
        SpecialTokens.from_npz(bad)
    wide = write_tiny_special_tokens(tmp_path / "wide.npz", 4096)
    with pytest.raises(GeneratorLoadError, match="4096-dim but the T5 encoder outputs 32"):
        MagiTextEncoder.from_folder(t5_root, wide)
    embs, masks = encoder.encode(["x"])
    with pytest.raises(ValueError, match="no special_tokens.npz"):
        caption_rows(embs, masks, 2, special_tokens=None)


# ---------------------------------------------------------------------------------- caching
class _Counter:
    def __init__(self, model):
        self.calls = 0
        self.rows = 0
        self._forward = model.forward

        def forward(*a, **k):
            self.calls += 1
            self.rows += k["input_ids"].shape[0]
            return self._forward(*a, **k)

        model.forward = forward


def test_prompt_cache_memory_and_disk(t5_root, tokens_path, tmp_path):
    cache = tmp_path / "cache"
    enc = MagiTextEncoder.from_folder(t5_root, tokens_path, cache_dir=cache)
    cnt = _Counter(enc.model)
    a1, ma = enc.encode(["a ball falls", "a cube slides", "a ball falls"])
    assert cnt.rows == 2  # each distinct prompt encoded once
    a2, _ = enc.encode(["a cube slides", "a ball falls"])
    assert cnt.rows == 2 and enc.stats.memory_hits == 2
    torch.testing.assert_close(a2[1], a1[0])
    # a new process (new instance) with the same cache dir: disk hits, no T5 call
    enc2 = MagiTextEncoder.from_folder(t5_root, tokens_path, cache_dir=cache)
    cnt2 = _Counter(enc2.model)
    b, mb = enc2.encode(["a ball falls"])
    assert cnt2.calls == 0 and enc2.stats.disk_hits == 1
    assert torch.equal(b, a1[:1]) and torch.equal(mb, ma[:1])
    # chunk rows reuse the cache too
    enc2.encode_for_chunks(["a ball falls"], 3)
    assert cnt2.calls == 0
    # a different model (other weights, same config) does not hit this cache
    other_root = write_tiny_t5(tmp_path / "t5b", seed=1)
    enc3 = MagiTextEncoder.from_folder(other_root, tokens_path, cache_dir=cache)
    assert enc3.identity != enc2.identity
    cnt3 = _Counter(enc3.model)
    c, _ = enc3.encode(["a ball falls"])
    assert cnt3.calls == 1 and not torch.allclose(c, b)


def test_lru_eviction(t5_root):
    enc = MagiTextEncoder.from_folder(t5_root, memory_cache_size=1)
    cnt = _Counter(enc.model)
    enc.encode(["a"])
    enc.encode(["b"])
    enc.encode(["b"])
    assert cnt.calls == 2
    enc.encode(["a"])  # evicted by "b"
    assert cnt.calls == 3


# ----------------------------------------------------------------------------------- errors
def test_folder_errors(tmp_path, t5_root):
    with pytest.raises(GeneratorLoadError, match="does not exist"):
        MagiTextEncoder.from_folder(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GeneratorLoadError, match="no config.json"):
        MagiTextEncoder.from_folder(tmp_path / "empty")
    # the T5 folder itself is accepted too
    enc = MagiTextEncoder.from_folder(t5_root / T5_SUBFOLDER)
    assert enc.width == WIDTH
    partial = tmp_path / "partial"
    shutil.copytree(t5_root, partial)
    (partial / T5_SUBFOLDER / "pytorch_model-00002-of-00002.bin").unlink()
    with pytest.raises(GeneratorLoadError, match="incomplete: missing shards"):
        MagiTextEncoder.from_folder(partial)
    notok = tmp_path / "notok"
    shutil.copytree(t5_root, notok)
    (notok / T5_SUBFOLDER / "tokenizer.json").unlink()
    with pytest.raises(GeneratorLoadError, match="no tokenizer"):
        MagiTextEncoder.from_folder(notok)
    spm_only = tmp_path / "spm_only"
    shutil.copytree(t5_root, spm_only)
    (spm_only / T5_SUBFOLDER / "tokenizer.json").rename(spm_only / T5_SUBFOLDER / "spiece.model")
    import importlib.util

    if importlib.util.find_spec("sentencepiece") is None:
        with pytest.raises(GeneratorLoadError, match="needs the 'sentencepiece' package"):
            MagiTextEncoder.from_folder(spm_only)
    noweights = tmp_path / "noweights"
    shutil.copytree(t5_root, noweights)
    for f in (noweights / T5_SUBFOLDER).glob("pytorch_model*"):
        f.unlink()
    with pytest.raises(GeneratorLoadError, match="has no weights"):
        MagiTextEncoder.from_folder(noweights)
