"""Our V-JEPA 2 modules equal (i) transformers' VJEPA2Model on the same weights and (ii) a
straightforward re-statement of the official code's semantics written here with plain loops:
RoPE on adjacent channel pairs with the repeated (not interleaved) frequency table and unrotated
leftover channels, encoder tokens dropped after the patch embedding at their own positions, and
the predictor's sort / mask_tokens[1] / un-sort ordering.

The tiny model has 16-channel encoder heads (3×4 rotated, 4 left over) and 12-channel predictor
heads, and large random weights, so a wrong position or order moves outputs by ≫ the tolerance
(test_reference_is_sensitive shows it).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.rewards.vjepa2.model import load_world_model

from .conftest import random_clip  # noqa: F401  (fixtures live in conftest)

ATOL = 1e-5


def windows(seed: int, b: int = 2, t: int = 16, s: int = 64) -> torch.Tensor:
    return torch.randn(b, t, 3, s, s, generator=torch.Generator().manual_seed(seed))


def random_split(n_all: int, n_ctx: int, n_tgt: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n_all, generator=torch.Generator().manual_seed(seed))
    return perm[:n_ctx], perm[n_ctx : n_ctx + n_tgt]  # unsorted on purpose


# ---- (i) transformers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_pair(tiny_dir):
    from transformers import VJEPA2Model

    hf = VJEPA2Model.from_pretrained(str(tiny_dir), local_files_only=True).eval()
    return hf, load_world_model("hf", tiny_dir)


def test_encoder_equals_transformers(hf_pair) -> None:
    hf, ours = hf_pair
    x = windows(0)
    with torch.no_grad():
        ref = hf.encoder(pixel_values_videos=x).last_hidden_state
        torch.testing.assert_close(ours.encode(x), ref, atol=ATOL, rtol=0)
        # context frames alone: HF numbers the tokens 0.. exactly like our prefix encoding
        ref = hf.encoder(pixel_values_videos=x[:, :8]).last_hidden_state
        torch.testing.assert_close(ours.encode(x[:, :8]), ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("causal", [True, False])
def test_predictor_equals_transformers(hf_pair, causal: bool) -> None:
    hf, ours = hf_pair
    x = windows(1)
    with torch.no_grad():
        enc = ours.encode(x)
        ctx_ids, tgt_ids = (torch.arange(64), torch.arange(64, 128)) if causal else random_split(128, 40, 50, 3)
        ref = hf.predictor(
            encoder_hidden_states=enc, context_mask=[ctx_ids.expand(2, -1)], target_mask=[tgt_ids.expand(2, -1)]
        ).last_hidden_state
        got = ours.predict(enc[:, ctx_ids], ctx_ids, tgt_ids)
        torch.testing.assert_close(got, ref, atol=ATOL, rtol=0)


def test_hf_and_official_files_hold_the_same_model(tiny_dir, tiny_model) -> None:
    hf = load_world_model("hf", tiny_dir)
    for a, b in zip(tiny_model.state_dict().values(), hf.state_dict().values()):
        assert torch.equal(a, b)


# ---- (ii) a loop-by-loop restatement of the official semantics ---------------------------------


def naive_rope(x: torch.Tensor, ids: list[int], grid: int) -> torch.Tensor:
    """x (heads, N, hd). Channel by channel, as the official code lays it out."""
    hd = x.shape[-1]
    d = 2 * ((hd // 3) // 2)
    out = x.clone()
    pos = {
        0: [i // (grid * grid) for i in ids],
        1: [(i % (grid * grid)) // grid for i in ids],
        2: [i % grid for i in ids],
    }
    for axis in range(3):
        p = torch.tensor(pos[axis], dtype=torch.float32)
        for c in range(d):
            ch = axis * d + c
            j = c % (d // 2)  # frequency table = [w0..w(d/2-1)] written twice
            w = 1.0 / 10000 ** torch.tensor(j / (d / 2.0), dtype=torch.float32)
            partner = ch + 1 if c % 2 == 0 else ch - 1
            sign = -1.0 if c % 2 == 0 else 1.0  # (x0, x1) -> (-x1, x0)
            out[..., ch] = x[..., ch] * torch.cos(p * w) + sign * x[..., partner] * torch.sin(p * w)
    return out  # channels from 3d on stay as they are


def naive_block(sd: dict, pre: str, x: torch.Tensor, ids: list[int], grid: int, heads: int) -> torch.Tensor:
    n, dim = x.shape
    hd = dim // heads
    y = F.layer_norm(x, (dim,), sd[pre + "norm1.weight"], sd[pre + "norm1.bias"], eps=1e-6)
    qkv = y @ sd[pre + "attn.qkv.weight"].T + sd[pre + "attn.qkv.bias"]
    q, k, v = (qkv[:, i * dim : (i + 1) * dim].reshape(n, heads, hd).transpose(0, 1) for i in range(3))
    q, k = naive_rope(q, ids, grid), naive_rope(k, ids, grid)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
    y = (att @ v).transpose(0, 1).reshape(n, dim)
    x = x + y @ sd[pre + "attn.proj.weight"].T + sd[pre + "attn.proj.bias"]
    y = F.layer_norm(x, (dim,), sd[pre + "norm2.weight"], sd[pre + "norm2.bias"], eps=1e-6)
    y = F.gelu(y @ sd[pre + "mlp.fc1.weight"].T + sd[pre + "mlp.fc1.bias"])
    return x + y @ sd[pre + "mlp.fc2.weight"].T + sd[pre + "mlp.fc2.bias"]


def naive_encoder(sd: dict, video: torch.Tensor, keep: list[int] | None, heads: int, depth: int) -> torch.Tensor:
    """video (C, T, H, W): tubelet embedding, drop the non-kept tokens, blocks at the kept ids."""
    tok = F.conv3d(video[None], sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=(2, 16, 16))
    grid = video.shape[-1] // 16
    tok = tok.flatten(2)[0].T  # (t·h·w, D), token id = t·g² + h·g + w
    ids = list(range(len(tok))) if keep is None else list(keep)
    x = tok[ids]
    for i in range(depth):
        x = naive_block(sd, f"blocks.{i}.", x, ids, grid, heads)
    return F.layer_norm(x, (x.shape[-1],), sd["norm.weight"], sd["norm.bias"], eps=1e-6)


def naive_predictor(
    sd: dict, ctx: torch.Tensor, ctx_ids: list[int], tgt_ids: list[int], grid: int, heads: int, depth: int
) -> torch.Tensor:
    x = ctx @ sd["predictor_embed.weight"].T + sd["predictor_embed.bias"]
    x = torch.cat([x, sd["mask_tokens.1"].reshape(1, -1).expand(len(tgt_ids), -1)])  # mask_index 1
    ids = list(ctx_ids) + list(tgt_ids)
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    x, sorted_ids = x[order], [ids[i] for i in order]
    for i in range(depth):
        x = naive_block(sd, f"predictor_blocks.{i}.", x, sorted_ids, grid, heads)
    x = F.layer_norm(x, (x.shape[-1],), sd["predictor_norm.weight"], sd["predictor_norm.bias"], eps=1e-6)
    back = [order.index(i) for i in range(len(ids))]  # un-sort
    x = x[back][len(ctx_ids) :]
    return x @ sd["predictor_proj.weight"].T + sd["predictor_proj.bias"]


def test_encoder_equals_naive_official(tiny_model) -> None:
    sd = {k: v.float() for k, v in tiny_model.encoder.state_dict().items()}
    x = windows(2, b=1)
    video = x[0].transpose(0, 1)
    keep, _ = random_split(128, 50, 0, 5)
    with torch.no_grad():
        torch.testing.assert_close(tiny_model.encode(x)[0], naive_encoder(sd, video, None, 4, 2), atol=ATOL, rtol=0)
        got = tiny_model.encoder(video[None], keep)[0]
        torch.testing.assert_close(got, naive_encoder(sd, video, keep.tolist(), 4, 2), atol=ATOL, rtol=0)
        # the scorer's prefix encoding is the official masked encoding for a causal split
        prefix = tiny_model.encode(x[:, :8])[0]
        torch.testing.assert_close(prefix, naive_encoder(sd, video, list(range(64)), 4, 2), atol=ATOL, rtol=0)


@pytest.mark.parametrize("causal", [True, False])
def test_predictor_equals_naive_official(tiny_model, causal: bool) -> None:
    sd = {k: v.float() for k, v in tiny_model.predictor.state_dict().items()}
    ctx_ids, tgt_ids = (torch.arange(64), torch.arange(64, 128)) if causal else random_split(128, 30, 40, 7)
    ctx = torch.randn(1, len(ctx_ids), 64, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        got = tiny_model.predict(ctx, ctx_ids, tgt_ids)[0]
        ref = naive_predictor(sd, ctx[0], ctx_ids.tolist(), tgt_ids.tolist(), 4, 4, 2)
    torch.testing.assert_close(got, ref, atol=ATOL, rtol=0)


def test_per_sample_ids_equal_shared_ids(tiny_model) -> None:
    ctx_ids, tgt_ids = random_split(128, 30, 40, 9)
    ctx = torch.randn(3, 30, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        shared = tiny_model.predict(ctx, ctx_ids, tgt_ids)
        per_sample = tiny_model.predict(ctx, ctx_ids.expand(3, -1), tgt_ids.expand(3, -1))
    torch.testing.assert_close(shared, per_sample, atol=1e-6, rtol=0)


def test_reference_is_sensitive(tiny_model, monkeypatch) -> None:
    """The checks above would catch an interleaved frequency table or a wrong mask token."""
    sd = {k: v.float() for k, v in tiny_model.predictor.state_dict().items()}
    ctx_ids, tgt_ids = torch.arange(64), torch.arange(64, 128)
    ctx = torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        good = naive_predictor(sd, ctx[0], ctx_ids.tolist(), tgt_ids.tolist(), 4, 4, 2)
        swapped = dict(sd, **{"mask_tokens.1": sd["mask_tokens.0"]})
        assert (naive_predictor(swapped, ctx[0], ctx_ids.tolist(), tgt_ids.tolist(), 4, 4, 2) - good).abs().max() > 1e-2
        import pipeline.rewards.vjepa2.rope as rope

        def interleaved(pos, d):
            omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float32) / (d / 2.0))
            return (pos.unsqueeze(-1) * omega).repeat_interleave(2, dim=-1)

        monkeypatch.setattr(rope, "_axis_angles", interleaved)
        assert (tiny_model.predict(ctx, ctx_ids, tgt_ids)[0] - good).abs().max() > 1e-2
