"""MAGI-1 VAE: architecture vs an independent reference, official tiling/blend, scaling, uint8
post-processing, loading of the official folder format, error messages, gradients (tiny CPU models)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.generators.base import GeneratorLoadError
from pipeline.generators.magi1.vae import (
    SCALE_FACTOR,
    TINY_VAE_DDCONFIG,
    VAE_WEIGHTS_NAME,
    MagiVAE,
    latents_to_uint8,
)
from pipeline.generators.magi1.vae_tiling import blend_along, blend_weights, decode_plan, encode_plan, run_tiled
from pipeline.tiny_models.magi1 import write_tiny_vae

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    return write_tiny_vae(tmp_path_factory.mktemp("vae") / "vae", seed=3)


@pytest.fixture(scope="module")
def vae(vae_dir):
    return MagiVAE.from_folder(vae_dir, device="cpu", dtype=torch.float32)


def small_tiles(model: MagiVAE, size=(64, 64)) -> MagiVAE:
    """Same weights, 64-px spatial tiles (8 latents, stride 6, 16-px blend) to keep CPU tests fast."""
    model.tile_sample_size = size
    return model


@pytest.fixture()
def vae64(vae_dir):
    return small_tiles(MagiVAE.from_folder(vae_dir, dtype=torch.float32))


# ----------------------------------------------------------------------------- reference model
def _std_heads(x, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    sd = ((x - mu) ** 2).mean(-1, keepdim=True).sqrt()
    return (x - mu) / (sd + eps)


def _ref_transformer(sd, pre, tokens, grid, cfg):
    d, heads = cfg["embed_dim"], cfg["num_heads"]
    src = (cfg["video_length"] // cfg["patch_length"],) + (cfg["video_size"] // cfg["patch_size"],) * 2
    pos = sd[f"{pre}.pos_embed"]
    table = pos[0, 1:].reshape(*src, d).permute(3, 0, 1, 2)[None]
    table = F.interpolate(table, size=grid, mode="trilinear", align_corners=False)[0].permute(1, 2, 3, 0).reshape(-1, d)
    b = tokens.shape[0]
    x = torch.cat([sd[f"{pre}.cls_token"].expand(b, 1, d), tokens], 1)
    x = x + torch.cat([pos[0, :1], table], 0)[None]
    for i in range(cfg["depth"]):
        p = f"{pre}.blocks.{i}."
        qkv = x @ sd[p + "attn.qkv.weight"].T + sd[p + "attn.qkv.bias"]
        q, k, v = [_std_heads(t.reshape(b, -1, heads, d // heads)) for t in qkv.split(d, -1)]
        att = torch.einsum("bnhc,bmhc->bhnm", q, k) / math.sqrt(d // heads)
        o = torch.einsum("bhnm,bmhc->bnhc", att.softmax(-1), v).reshape(b, -1, d)
        x = x + o @ sd[p + "attn.proj.weight"].T + sd[p + "attn.proj.bias"]
        h = F.layer_norm(x, (d,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], 1e-5)
        h = F.gelu(h @ sd[p + "mlp.fc1.weight"].T + sd[p + "mlp.fc1.bias"])
        x = x + h @ sd[p + "mlp.fc2.weight"].T + sd[p + "mlp.fc2.bias"]
    x = F.layer_norm(x, (d,), sd[f"{pre}.norm.weight"], sd[f"{pre}.norm.bias"], 1e-5)
    return x[:, 1:]


def ref_encode_mean(sd, cfg, video):
    """video (B,3,T,H,W) in [-1,1] -> posterior mean (unscaled)."""
    feat = F.conv3d(
        video,
        sd["encoder.patch_embed.proj.weight"],
        sd["encoder.patch_embed.proj.bias"],
        stride=sd["encoder.patch_embed.proj.weight"].shape[2:],
    )
    b, _, t, h, w = feat.shape
    x = _ref_transformer(sd, "encoder", feat.flatten(2).transpose(1, 2), (t, h, w), cfg)
    mom = x @ sd["encoder.last_layer.weight"].T + sd["encoder.last_layer.bias"]
    mom = mom.reshape(b, t, h, w, -1).permute(0, 4, 1, 2, 3)
    return mom[:, : cfg["z_chans"]]


def ref_decode(sd, cfg, z):
    """unscaled latent (B,16,t,h,w) -> raw frames (B,3,4t,8h,8w)."""
    b, c, t, h, w = z.shape
    x = z.permute(0, 2, 3, 4, 1).reshape(b, -1, c) @ sd["decoder.proj_in.weight"].T + sd["decoder.proj_in.bias"]
    x = _ref_transformer(sd, "decoder", x, (t, h, w), cfg)
    p, pl = cfg["patch_size"], cfg["patch_length"]
    cu = cfg["embed_dim"] // (p * p * pl)
    out = torch.zeros(b, cu, t * pl, h * p, w * p)
    x = x.reshape(b, t, h, w, pl, p, p, cu)
    for a in range(pl):  # explicit scatter of every patch
        for yy in range(p):
            for xx in range(p):
                out[:, :, a::pl, yy::p, xx::p] = x[:, :, :, :, a, yy, xx].permute(0, 4, 1, 2, 3)
    return F.conv3d(out, sd["decoder.last_layer.weight"], sd["decoder.last_layer.bias"], padding=1)


# ----------------------------------------------------------------------------- reference tiling
def ref_tiled(x, fn, lat_tile, stride, blend, keep, *, inplace_neighbours):
    """Literal transcription of the documented official loop (per-row in-place blend, crops, cat)."""
    n = [len(range(0, x.shape[2 + a], stride[a])) for a in range(3)]
    tiles = {}
    for f in range(n[0]):
        for i in range(n[1]):
            for j in range(n[2]):
                t0, h0, w0 = f * stride[0], i * stride[1], j * stride[2]
                tiles[f, i, j] = fn(x[:, :, t0 : t0 + lat_tile[0], h0 : h0 + lat_tile[1], w0 : w0 + lat_tile[2]])
    raw = {k: v.clone() for k, v in tiles.items()}
    out = {}
    for f in range(n[0]):
        for i in range(n[1]):
            for j in range(n[2]):
                b = tiles[f, i, j] if inplace_neighbours else raw[f, i, j].clone()
                src = tiles if inplace_neighbours else raw
                for axis, prev in ((0, (f - 1, i, j)), (1, (f, i - 1, j)), (2, (f, i, j - 1))):
                    if min(prev) < 0:
                        continue
                    a = src[prev]
                    dim = 2 + axis
                    e = min(a.shape[dim], b.shape[dim], blend[axis])
                    for y in range(e):
                        sa = a.select(dim, a.shape[dim] - e + y)
                        b.select(dim, y).copy_(sa * (1 - y / e) + b.select(dim, y) * (y / e))
                out[f, i, j] = b[:, :, : keep[0], : keep[1], : keep[2]]
    return torch.cat(
        [torch.cat([torch.cat([out[f, i, j] for j in range(n[2])], 4) for i in range(n[1])], 3) for f in range(n[0])], 2
    )


# ================================================================================ tests: tiling
def test_blend_weights_and_cross_fade():
    assert blend_weights(64) == [k / 64 for k in range(64)]
    a = torch.zeros(1, 1, 1, 10, 1)
    b = torch.ones(1, 1, 1, 12, 1)
    out = blend_along(a, b, 4, dim=3)[0, 0, 0, :, 0]
    assert out.tolist() == [0.0, 0.25, 0.5, 0.75] + [1.0] * 8
    # the extent shrinks to the shorter tile (official min(a, b, extent))
    out = blend_along(torch.full((1, 1, 1, 1, 20), 2.0), torch.zeros(1, 1, 1, 1, 3), 64, dim=4)[0, 0, 0, 0]
    assert torch.allclose(out, torch.tensor([2.0, 2 * 2 / 3, 2 / 3]))
    # a ramp tail is blended with the *last* e samples of the previous tile
    a = torch.arange(10.0).view(1, 1, 1, 10, 1)
    out = blend_along(a, torch.zeros(1, 1, 1, 5, 1), 2, dim=3)[0, 0, 0, :, 0]
    assert out.tolist() == [8.0, 4.5, 0.0, 0.0, 0.0]


def test_official_decode_and_encode_geometry():
    # 720x1280 chunk (6 latent frames) at fps 24: tiles of 3 latent frames, 32 latents, stride 24
    p = decode_plan((1, 16, 6, 90, 160), tile_sample_length=24 // 2)
    t, h, w = p.axes
    assert (t.starts, t.tile, t.blend, t.keep) == ((0, 3), 3, 0, 12)
    assert (h.starts, h.tile, h.blend, h.keep) == ((0, 24, 48, 72), 32, 64, 192)
    assert w.starts == tuple(range(0, 160, 24)) and (w.blend, w.keep) == (64, 192)
    e = encode_plan((1, 3, 32, 720, 1280), tile_sample_length=12)
    t, h, w = e.axes
    assert (t.starts, t.tile, t.blend, t.keep) == ((0, 12, 24), 12, 0, 3)
    assert (h.starts, h.tile, h.blend, h.keep) == ((0, 192, 384, 576), 256, 8, 24)


def _local_decode(z):
    """A position-independent 'decoder': every latent maps to its own 4x8x8 block (t==1 -> 1 frame)."""
    out = z[:, :3].repeat_interleave(8, 3).repeat_interleave(8, 4)
    return out if z.shape[2] == 1 else out.repeat_interleave(4, 2)


def test_tiling_stitches_exactly_at_official_sizes():
    z = torch.randn(1, 3, 7, 41, 57)
    plan = decode_plan(z.shape, tile_sample_length=12)
    tiled = run_tiled(z, _local_decode, plan)
    # 7 latent frames -> tiles 3,3,1 -> 12+12+1 frames
    ref = torch.cat([_local_decode(z[:, :, :6]), _local_decode(z[:, :, 6:])], 2)
    assert tiled.shape == ref.shape == (1, 3, 25, 328, 456)
    torch.testing.assert_close(tiled, ref, rtol=0, atol=1e-6)


def test_blend_region_values_with_tile_constant_decoder():
    """Each tile decodes to its own constant: the seams must show the documented linear ramps."""
    z = torch.zeros(1, 16, 3, 40, 8)
    z[:, :, :, :, :] = torch.arange(40.0).view(1, 1, 1, 40, 1)  # tile id readable from first row

    def const(tile):
        return torch.full((1, 3, 12, tile.shape[3] * 8, tile.shape[4] * 8), float(tile[0, 0, 0, 0, 0]))

    out = run_tiled(z, const, decode_plan(z.shape, tile_sample_length=12))[0, 0, 0, :, 0]
    # tile 0 (value 0) keeps rows 0..191; tile 1 starts at latent 24 (value 24), 16 latents = 128 px
    assert out.shape[0] == 192 + 128
    assert torch.all(out[:192] == 0)
    k = torch.arange(64.0)
    torch.testing.assert_close(out[192:256], 0 * (1 - k / 64) + 24 * (k / 64))
    assert torch.all(out[256:] == 24)


def test_tiled_decode_matches_literal_reference(vae64):
    z = torch.randn(1, 16, 6, 10, 14, generator=torch.Generator().manual_seed(0))
    ours = vae64.decode(z, tiled=True, scaled=False)
    ref = ref_tiled(z, vae64.decode_tile, (3, 8, 8), (3, 6, 6), (0, 16, 16), (12, 48, 48), inplace_neighbours=False)
    assert ours.shape == ref.shape == (1, 3, 24, 80, 112)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_tiled_encode_matches_literal_reference_with_inplace_neighbours(vae64):
    g = torch.Generator().manual_seed(1)
    video = torch.rand(1, 3, 8, 80, 112, generator=g) * 2 - 1
    ours = vae64.encode(video, tiled=True, scaled=False)
    ref = ref_tiled(video, vae64.encode_tile, (12, 64, 64), (12, 48, 48), (0, 2, 2), (3, 6, 6), inplace_neighbours=True)
    assert ours.shape == ref.shape == (1, 16, 2, 10, 14)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    raw = ref_tiled(
        video, vae64.encode_tile, (12, 64, 64), (12, 48, 48), (0, 2, 2), (3, 6, 6), inplace_neighbours=False
    )
    assert (ours - raw).abs().max() > 1e-4  # the in-place (blended-neighbour) rule is visible


def test_single_tile_equals_untiled(vae):
    z = torch.randn(1, 16, 3, 5, 6)
    torch.testing.assert_close(vae.decode(z, tiled=True), vae.decode(z, tiled=False), rtol=0, atol=0)


# ========================================================================= tests: architecture
def test_decode_matches_reference_model(vae, vae_dir):
    sd = {k: v.float() for k, v in vae.state_dict().items()}
    z = torch.randn(2, 16, 2, 3, 5, generator=torch.Generator().manual_seed(2))
    ref = ref_decode(sd, TINY_VAE_DDCONFIG, z)
    ours = vae.decode(z * SCALE_FACTOR, tiled=False, scaled=True)
    assert ours.shape == (2, 3, 8, 24, 40)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    # one latent frame decodes to one frame (the first of the 4)
    one = vae.decode(z[:, :, :1], tiled=False, scaled=False)
    torch.testing.assert_close(one, ref_decode(sd, TINY_VAE_DDCONFIG, z[:, :, :1])[:, :, :1], rtol=1e-4, atol=1e-4)


def test_encode_is_scaled_posterior_mean(vae):
    sd = {k: v.float() for k, v in vae.state_dict().items()}
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 24, 40, 3), dtype=np.uint8)
    x = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
    mean = ref_encode_mean(sd, TINY_VAE_DDCONFIG, x)
    z = vae.encode(frames, tiled=False)
    assert z.shape == (2, 16, 2, 3, 5) and z.dtype == torch.float32
    torch.testing.assert_close(z, mean * SCALE_FACTOR, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(vae.encode(frames, tiled=False, scaled=False), mean, rtol=1e-4, atol=1e-5)
    # (T,H,W,3) input == batch of one; float input in [-1,1] == uint8 input
    torch.testing.assert_close(vae.encode(frames[0]), vae.encode(frames[:1]))
    torch.testing.assert_close(vae.encode(x), vae.encode(frames))
    # a single frame is encoded as that frame repeated 4x (official i2v path)
    img = frames[0, :1]
    torch.testing.assert_close(vae.encode(img), vae.encode(np.repeat(img, 4, axis=0)))


def test_uint8_post_processing():
    raw = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0, -0.0039]).view(1, 1, 7, 1, 1).expand(1, 3, 7, 1, 1)
    u8 = latents_to_uint8(raw)
    assert u8.shape == (1, 7, 1, 1, 3) and u8.dtype == torch.uint8
    # x*127.5+127.5, clamp to [0,255], truncate (127.5 -> 127, 254.87 -> 254, 127.0027 -> 127)
    assert u8[0, :, 0, 0, 0].tolist() == [0, 0, 127, 254, 255, 255, 127]


def test_decode_to_uint8(vae):
    z = torch.randn(1, 16, 2, 3, 4)
    u = vae.decode_to_uint8(z)
    assert u.shape == (1, 8, 24, 32, 3) and u.dtype == np.uint8
    raw = vae.decode(z)
    expect = ((raw * 127.5 + 127.5).clamp(0, 255).to(torch.uint8)).permute(0, 2, 3, 4, 1).numpy()
    np.testing.assert_array_equal(u, expect)
    assert vae.decode_to_uint8(z[0]).shape == (8, 24, 32, 3)
    assert vae.output_frames(6) == 24 and vae.output_frames(7) == 25


# ============================================================================= tests: folders
def test_folder_round_trip_and_bf16(tmp_path, vae):
    from pipeline.generators.magi1.vae_model import ViTVAEConfig, init_random_

    model = MagiVAE(ViTVAEConfig.from_ddconfig(TINY_VAE_DDCONFIG))
    init_random_(model, seed=11)
    folder = model.save_folder(tmp_path / "vae")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["_class_name"] == "ViTVAE" and cfg["model_type"] == "vit" and cfg["ddconfig"]["z_chans"] == 16
    assert (folder / VAE_WEIGHTS_NAME).is_file()
    loaded = MagiVAE.from_folder(folder, dtype=torch.float32)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    z = torch.randn(1, 16, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(z), model.decode(z), rtol=0, atol=0)
    bf = MagiVAE.from_folder(folder, dtype="bfloat16")
    assert bf.dtype == torch.bfloat16 and not any(p.requires_grad for p in bf.parameters())
    out = bf.decode(z)
    assert out.dtype == torch.bfloat16
    assert (out.float() - model.decode(z)).abs().max() < 0.1


def test_folder_errors(tmp_path, vae_dir):
    import shutil

    with pytest.raises(GeneratorLoadError, match="does not exist"):
        MagiVAE.from_folder(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GeneratorLoadError, match="no config.json"):
        MagiVAE.from_folder(empty)
    wrong = tmp_path / "wrong"
    shutil.copytree(vae_dir, wrong)
    (wrong / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKLWan"}))
    with pytest.raises(GeneratorLoadError, match="ViTVAE"):
        MagiVAE.from_folder(wrong)
    noweights = tmp_path / "noweights"
    shutil.copytree(vae_dir, noweights)
    (noweights / VAE_WEIGHTS_NAME).unlink()
    with pytest.raises(GeneratorLoadError, match="no weights"):
        MagiVAE.from_folder(noweights)
    # partial weights: one tensor missing
    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial"
    shutil.copytree(vae_dir, partial)
    sd = load_file(str(partial / VAE_WEIGHTS_NAME))
    del sd["decoder.proj_in.weight"]
    save_file(sd, str(partial / VAE_WEIGHTS_NAME))
    with pytest.raises(GeneratorLoadError, match=r"1 missing tensors.*decoder.proj_in.weight"):
        MagiVAE.from_folder(partial)
    # config does not match the weights
    mism = tmp_path / "mismatch"
    shutil.copytree(vae_dir, mism)
    cfg = json.loads((mism / "config.json").read_text())
    cfg["ddconfig"]["embed_dim"] = 512
    (mism / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GeneratorLoadError, match="wrong shape"):
        MagiVAE.from_folder(mism)
    # unsupported variant
    cfg["ddconfig"]["embed_dim"] = 256
    cfg["ddconfig"]["use_rope"] = True
    (mism / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GeneratorLoadError, match="use_rope"):
        MagiVAE.from_folder(mism)
    # truncated file
    trunc = tmp_path / "trunc"
    shutil.copytree(vae_dir, trunc)
    data = (trunc / VAE_WEIGHTS_NAME).read_bytes()
    (trunc / VAE_WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(GeneratorLoadError, match="cannot read VAE weights"):
        MagiVAE.from_folder(trunc)


# =========================================================================== tests: gradients
def test_gradient_flows_through_tiled_decode(vae64):
    z = torch.randn(1, 16, 3, 10, 9, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    vae64.decode(z, tiled=True).square().mean().backward()
    g = z.grad.clone()
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert (g.abs().sum(dim=(0, 1, 2)) > 0).all()  # every latent position receives gradient
    z.grad = None
    vae64.gradient_checkpointing = True
    try:
        vae64.decode(z, tiled=True).square().mean().backward()
    finally:
        vae64.gradient_checkpointing = False
    torch.testing.assert_close(z.grad, g, rtol=1e-5, atol=1e-7)
