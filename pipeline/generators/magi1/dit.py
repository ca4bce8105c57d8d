"""MAGI-1 video DiT (our implementation of the official ``VideoDiTModel``), plain PyTorch.

Module and parameter names follow the official checkpoint keys exactly (``x_embedder.weight``,
``videodit_blocks.layers.{i}.self_attention.linear_qkv.q.weight``, ...), so an official
``state_dict`` loads without renaming. The numerics follow the official module (SandAI-org/MAGI-1: inference/model/dit/dit_module.py); see
``MagiDiT.forward`` for the input contract and ``pipeline/generators/magi1/__init__.py`` for the
API summary. No parallel code lives here; see the notes on seams in ``__init__.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import BlockCausalAttention, CrossAttention, KVCache
from .config import MagiModelConfig
from .rope import LearnedRope3D, apply_rope

# Modules whose parameters are kept (and computed) in float32 whatever the model dtype, as the
# official "high precision promoter": embedders, rope, final linear, self-attention q/k norms
# (not the *_xattn ones), both post norms and the final norm.
FP32_MODULE_PREFIXES = ("x_embedder", "t_embedder", "y_embedder", "final_linear", "rope")
FP32_MODULE_SUFFIXES = (
    "self_attention.q_layernorm",
    "self_attention.k_layernorm",
    "self_attn_post_norm",
    "mlp_post_norm",
    "videodit_blocks.final_layernorm",
)

TIMESTEP_FREQ_DIM = 256
TIMESTEP_SCALE = 1000.0
GATE_SOFTCAP = 1.0
PROJ_PERMUTE_HN = 8  # "hn=8 is hardcoded" in the official attn_linear_proj, for any head count


def is_fp32_param(name: str) -> bool:
    """True if parameter ``name`` (official key) is kept in float32."""
    mod = name.rsplit(".", 1)[0]
    return mod.startswith(FP32_MODULE_PREFIXES) or mod.endswith(FP32_MODULE_SUFFIXES)


class LayerNorm1p(nn.Module):
    """LayerNorm with weight and bias; gamma = 1 + weight when ``one_p`` (``apply_layernorm_1p``)."""

    def __init__(self, dim: int, eps: float, one_p: bool) -> None:
        super().__init__()
        self.dim, self.eps, self.one_p = dim, eps, one_p
        self.weight = nn.Parameter(torch.zeros(dim), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(dim), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight + 1 if self.one_p else self.weight
        return F.layer_norm(x, (self.dim,), w, self.bias, self.eps)


def _linear(i: int, o: int, bias: bool = False) -> nn.Linear:
    return nn.Linear(i, o, bias=bias)


class Fp32Linear(nn.Linear):
    """A linear computed in float32 whatever its weights' dtype (the official ``linear_proj``);
    called as a module, so a tensor-parallel plan sees it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.float()
        return F.linear(x.float(), self.weight.float(), bias)


class TimestepEmbedder(nn.Module):
    def __init__(self, cfg: MagiModelConfig) -> None:
        super().__init__()
        c = cfg.cond_dim
        self.mlp = nn.Sequential(_linear(TIMESTEP_FREQ_DIM, c, True), nn.SiLU(), _linear(c, c, True))
        self.params_dtype = getattr(torch, cfg.torch_dtype_name)

    @staticmethod
    def sinusoid(t: torch.Tensor, dim: int = TIMESTEP_FREQ_DIM) -> torch.Tensor:
        """``[cos | sin]`` of ``t * 1000 * exp(-ln(1e4) k / (dim/2))``, float32 ``(len(t), dim)``."""
        half = dim // 2
        k = torch.arange(half, dtype=torch.float32, device=t.device)
        freqs = torch.exp(-math.log(10000.0) * k / half)
        args = t.float()[:, None] * freqs[None] * TIMESTEP_SCALE
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # the official code casts the sinusoid to the params dtype before the (fp32) MLP
        f = self.sinusoid(t).to(self.params_dtype).float()
        return self.mlp(f)


class CaptionEmbedder(nn.Module):
    def __init__(self, cfg: MagiModelConfig) -> None:
        super().__init__()
        C = cfg.caption_channels
        self.y_proj_xattn = nn.Sequential(_linear(C, cfg.xattn_cond_dim, True), nn.SiLU())
        self.y_proj_adaln = nn.Sequential(_linear(C, cfg.cond_dim, True))
        self.null_caption_embedding = nn.Parameter(torch.zeros(cfg.caption_max_length, C), requires_grad=False)

    def adaln_token(self, drop: torch.Tensor) -> torch.Tensor:
        """(N,) bool -> (N, cond_dim): null token ``[-1]`` where True, ``[-2]`` where False."""
        tok = torch.where(drop[:, None], self.null_caption_embedding[-1][None], self.null_caption_embedding[-2][None])
        return self.y_proj_adaln(tok)


class AdaModulate(nn.Module):
    def __init__(self, cfg: MagiModelConfig) -> None:
        super().__init__()
        self.proj = nn.Sequential(_linear(cfg.cond_dim, 2 * cfg.gate_dim, True))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        g = self.proj(F.silu(c))
        return (GATE_SOFTCAP * torch.tanh(g.float() / GATE_SOFTCAP)).to(g.dtype)


class QKVProjection(nn.Module):
    """One pre-LayerNorm shared by four bias-free projections: q, qx (cross-attn query), k, v.

    Tensor-parallel plan: all four are column-parallel by heads (q, qx: H*hd rows; k, v: G*hd)."""

    def __init__(self, cfg: MagiModelConfig) -> None:
        super().__init__()
        D, H, G, hd = cfg.hidden_size, cfg.num_attention_heads, cfg.num_query_groups, cfg.kv_channels
        self.layer_norm = nn.LayerNorm(D, eps=cfg.layernorm_epsilon)
        self.q = _linear(D, H * hd)
        self.qx = _linear(D, H * hd)
        self.k = _linear(D, G * hd)
        self.v = _linear(D, G * hd)


class JointAttention(nn.Module):
    """Self-attention (block-causal, RoPE, GQA, QK-LN) and caption cross-attention side by side,
    then ``linear_proj`` (row-parallel) over the permuted concatenation of both outputs."""

    def __init__(self, cfg: MagiModelConfig, layer_index: int) -> None:
        super().__init__()
        self.layer_index = layer_index
        H, G, hd = cfg.num_attention_heads, cfg.num_query_groups, cfg.kv_channels
        self.H, self.hd = H, hd
        eps, one_p = cfg.layernorm_epsilon, cfg.apply_layernorm_1p
        self.linear_qkv = QKVProjection(cfg)
        self.linear_kv_xattn = _linear(cfg.xattn_cond_dim, 2 * G * hd)  # column-parallel by groups
        self.linear_proj = Fp32Linear(2 * H * hd, cfg.hidden_size, bias=False)  # row-parallel
        self.q_layernorm = LayerNorm1p(hd, eps, one_p)
        self.q_layernorm_xattn = LayerNorm1p(hd, eps, one_p)
        self.k_layernorm = LayerNorm1p(hd, eps, one_p)
        self.k_layernorm_xattn = LayerNorm1p(hd, eps, one_p)
        self.core_attention = BlockCausalAttention()  # the Ulysses seam (and the KV cache behind it)
        self.cross_attention = CrossAttention()

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., heads * hd) -> (..., heads, hd); -1: tensor parallelism may have sharded the heads."""
        return x.view(*x.shape[:-1], -1, self.hd)

    def forward(self, h: torch.Tensor, ctx: _Ctx) -> torch.Tensor:
        N, S, _ = h.shape
        dt = h.dtype
        qkv = self.linear_qkv
        hn = qkv.layer_norm(h)

        # ---- self-attention: q/k LayerNorm_1p and RoPE in fp32, attention in the model dtype
        q = self.q_layernorm(self._heads(qkv.q(hn)).float())
        k = self.k_layernorm(self._heads(qkv.k(hn)).float())
        q = apply_rope(q.transpose(1, 2), ctx.cos, ctx.sin).to(dt)  # (N, H, S, hd)
        k = apply_rope(k.transpose(1, 2), ctx.cos, ctx.sin).to(dt)  # (N, G, S, hd)
        v = self._heads(qkv.v(hn)).transpose(1, 2)  # (N, G, S, hd)
        core = self.core_attention(q, k, v, ctx, self.layer_index)  # (N, H, S, hd); the Ulysses seam
        heads = core.shape[1]  # H, or this rank's share of them
        core = core.transpose(1, 2).reshape(N, S, heads * self.hd)

        # ---- cross-attention to the caption rows of each chunk (no RoPE)
        dn, tok = ctx.dn, S // ctx.dn  # tok: this rank's tokens of each chunk (sequence shards)
        qx = self.q_layernorm_xattn(self._heads(qkv.qx(hn)))  # (N, S, H, hd)
        qx = qx.view(N, dn, tok, heads, self.hd).permute(0, 1, 3, 2, 4).reshape(N * dn, heads, tok, self.hd)
        kvx = self.linear_kv_xattn(ctx.y_xattn)  # (R, L, 2*G*hd): per group [k_g | v_g]
        kvx = kvx.view(*kvx.shape[:-1], -1, 2 * self.hd)
        kx = self.k_layernorm_xattn(kvx[..., : self.hd]).transpose(1, 2)  # (R, G, L, hd)
        vx = kvx[..., self.hd :].transpose(1, 2)
        cross = self.cross_attention(qx, kx, vx, ctx.y_valid)  # (R, H, tok, hd)
        cross = cross.view(N, dn, heads, tok, self.hd).permute(0, 1, 3, 2, 4).reshape(N, S, heads * self.hd)

        # ---- fixed output permutation "(n hn d) -> (hn n d)", n=2, hn=8; linear_proj in fp32. With
        # the heads sharded over ranks in order, a rank holds hn * heads / H whole blocks of 8, so
        # its permuted slice is a contiguous slice of linear_proj's input (row-parallel)
        out = torch.cat([core, cross], dim=-1)
        out = out.view(N, S, 2, PROJ_PERMUTE_HN * heads // self.H, -1).transpose(2, 3).reshape(N, S, -1)
        return self.linear_proj(out)


class MLP(nn.Module):
    """Pre-LN MLP: SwiGLU (``gated_linear_unit``: silu(first half) * second half) or exact GELU.

    Tensor-parallel plan: ``linear_fc1`` column-parallel (for SwiGLU shard each half alike),
    ``linear_fc2`` row-parallel."""

    def __init__(self, cfg: MagiModelConfig) -> None:
        super().__init__()
        D, Fh = cfg.hidden_size, cfg.ffn_hidden_size
        self.gated = cfg.gated_linear_unit
        self.layer_norm = nn.LayerNorm(D, eps=cfg.layernorm_epsilon)
        self.linear_fc1 = _linear(D, 2 * Fh if self.gated else Fh)
        self.linear_fc2 = _linear(Fh, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear_fc1(self.layer_norm(x))
        if self.gated:
            a, b = h.chunk(2, dim=-1)
            h = F.silu(a) * b
        else:
            h = F.gelu(h)
        return self.linear_fc2(h)


class TransformerLayer(nn.Module):
    def __init__(self, cfg: MagiModelConfig, index: int) -> None:
        super().__init__()
        eps, one_p = cfg.layernorm_epsilon, cfg.apply_layernorm_1p
        self.ada_modulate_layer = AdaModulate(cfg)
        self.self_attention = JointAttention(cfg, index)
        self.self_attn_post_norm = LayerNorm1p(cfg.hidden_size, eps, one_p)
        self.mlp = MLP(cfg)
        self.mlp_post_norm = LayerNorm1p(cfg.hidden_size, eps, one_p)

    def forward(self, h: torch.Tensor, ctx: _Ctx) -> torch.Tensor:
        N, S, D = h.shape
        dt = h.dtype
        gates = self.ada_modulate_layer(ctx.condition)  # (N, dn, 2*D) in the model dtype
        g_msa, g_mlp = gates.float().chunk(2, dim=-1)

        def gated(y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:  # each token takes its chunk's gate
            return (y.float().view(N, ctx.dn, -1, D) * g[:, :, None, :]).view(N, S, D)

        a = self.self_attention(h, ctx)
        h = (self.self_attn_post_norm(gated(a, g_msa)) + h.float()).to(dt)
        m = self.mlp(h)
        h = (self.mlp_post_norm(gated(m, g_mlp)) + h.float()).to(dt)
        return h


class TransformerBlock(nn.Module):
    def __init__(self, cfg: MagiModelConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerLayer(cfg, i) for i in range(cfg.num_layers))
        self.final_layernorm = LayerNorm1p(cfg.hidden_size, cfg.layernorm_epsilon, cfg.apply_layernorm_1p)


class WholeSequence(nn.Module):
    """The sequence seam: every rank holds all tokens of every chunk. Sequence parallelism replaces
    this module (``ulysses.TokenShards``) to give each rank a share of each chunk's tokens."""

    def split(self, x: torch.Tensor, dn: int, dim: int) -> torch.Tensor:
        """This rank's tokens of ``x``, whose ``dim`` holds the tokens of ``dn`` chunks in order."""
        return x

    def gather(self, x: torch.Tensor, dn: int, tok: int, dim: int) -> torch.Tensor:
        """All ``tok`` tokens of each chunk again, from every rank's :meth:`split` share."""
        return x


class FinalLinear(nn.Module):
    def __init__(self, cfg: MagiModelConfig) -> None:
        super().__init__()
        p = cfg.patch_size * cfg.patch_size * cfg.t_patch_size
        self.linear = _linear(cfg.hidden_size, p * cfg.out_channels)


class _Ctx:
    """Per-forward values shared by all layers (plain attributes)."""

    __slots__ = (
        "condition",
        "cos",
        "sin",
        "y_xattn",
        "y_valid",
        "dn",
        "tok",
        "q_ranges",
        "k_ranges",
        "kv_cache",
        "use_cache",
        "update_kv_cache",
        "skip_last_chunk",
        "slice_point",
    )
    condition: torch.Tensor  # (N, dn, D) adaLN condition per chunk
    cos: torch.Tensor
    sin: torch.Tensor
    y_xattn: torch.Tensor  # projected caption rows
    y_valid: torch.Tensor  # their valid-token mask
    dn: int  # chunks in this forward
    tok: int  # tokens per chunk (all of them; a sequence shard holds fewer)
    q_ranges: list[tuple[int, int]]
    k_ranges: Any
    kv_cache: KVCache | None
    use_cache: bool
    update_kv_cache: bool
    skip_last_chunk: bool
    slice_point: int


IntRanges = torch.Tensor | Sequence[Sequence[int]]


class MagiDiT(nn.Module):
    """The MAGI-1 DiT. ``MagiDiT(model_config, dtype=None, device=None)``.

    ``dtype`` (default: ``params_dtype`` of the config) is the compute dtype of the transformer
    layers; embedders, rope, final linear, self-attention q/k norms and post/final norms are kept in
    float32 (official layout). See :meth:`forward`."""

    def __init__(self, cfg: MagiModelConfig, dtype: torch.dtype | None = None, device=None) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.compute_dtype = dtype or getattr(torch, cfg.torch_dtype_name)
        with torch.device(device or "cpu"):
            self.x_embedder = nn.Conv3d(
                cfg.in_channels,
                cfg.hidden_size,
                kernel_size=(cfg.t_patch_size, cfg.patch_size, cfg.patch_size),
                stride=(cfg.t_patch_size, cfg.patch_size, cfg.patch_size),
                bias=False,
            )
            self.t_embedder = TimestepEmbedder(cfg)
            self.y_embedder = CaptionEmbedder(cfg)
            self.rope = LearnedRope3D(cfg.rope_bands)
            self.videodit_blocks = TransformerBlock(cfg)
            self.final_linear = FinalLinear(cfg)
        self.sequence = WholeSequence()
        self.requires_grad_(False)
        self.apply_dtype_layout()
        # recompute each block in backward (reward guidance through the model); the parameters
        # never need grad, the gradient is for the latents
        self.gradient_checkpointing = False

    # ------------------------------------------------------------------ dtypes / init
    def param_dtype(self, name: str) -> torch.dtype:
        return torch.float32 if is_fp32_param(name) else self.compute_dtype

    def apply_dtype_layout(self) -> MagiDiT:
        for name, p in self.named_parameters():
            want = self.param_dtype(name)
            if p.dtype != want:
                p.data = p.data.to(want)
        return self

    @torch.no_grad()
    def init_random_(self, seed: int = 0) -> MagiDiT:
        """Random weights with sane scales (incl. non-zero norm weights, so the 1+w convention and
        every parameter matter); for tests and benches. Deterministic by ``seed`` on the CPU."""
        g = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            if name == "rope.bands":
                continue
            if name.endswith("null_caption_embedding"):
                val = torch.randn(p.shape, generator=g)
            elif p.ndim >= 2:
                fan_in = p[0].numel()
                val = torch.randn(p.shape, generator=g) / math.sqrt(fan_in)
            else:
                val = 0.1 * torch.randn(p.shape, generator=g)
            p.copy_(val.to(p.dtype))
        return self

    # ------------------------------------------------------------------ helpers
    def tokens_per_chunk(self, frames_per_chunk: int, height: int, width: int) -> int:
        """Tokens of one chunk of ``frames_per_chunk`` latent frames at latent ``height x width``."""
        c = self.cfg
        return (frames_per_chunk // c.t_patch_size) * (height // c.patch_size) * (width // c.patch_size)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        x = x.float() * c.x_rescale_factor
        if c.half_channel_vae:
            x = torch.cat([x, x], dim=1)
        w = self.x_embedder.weight
        x = F.conv3d(x, w.float(), stride=self.x_embedder.stride)  # (N, D, T', h, w)
        return x

    def _unpatchify(self, out: torch.Tensor, T: int, h: int, w: int) -> torch.Tensor:
        c = self.cfg
        N = out.shape[0]
        pt, p, C = c.t_patch_size, c.patch_size, c.out_channels
        out = out.view(N, T, h, w, pt, p, p, C).permute(0, 7, 1, 4, 2, 5, 3, 6)
        out = out.reshape(N, C, T * pt, h * p, w * p)
        if c.half_channel_vae:
            out = out[:, : c.vae_channels]
        return out / c.x_rescale_factor

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor,
        caption_dropout_mask: torch.Tensor | bool | None,
        xattn_mask: torch.Tensor,
        kv_range: IntRanges,
        kv_cache: KVCache | None = None,
        *,
        slice_point: int = 0,
        update_kv_cache: bool = False,
        distill_nearly_clean_chunk: bool = False,
        distill_dt: float | None = None,
    ) -> torch.Tensor:
        """Velocity for ``dn = t.shape[1]`` chunks of latent video. Inputs as the official
        ``VideoDiTModel.forward`` (in dit_module.py):

        * ``x`` ``(N, C_vae, T, H, W)``: latents (VAE latent x scale_factor), chunks in temporal
          order, ``T = dn * frames_per_chunk``; ``C_vae`` = 16 (24B's half_channel_vae duplicates
          it to 32 internally).
        * ``t`` ``(N, dn)``: per chunk, t = 0 noise, 1 clean (``clean_t`` = 0.9999 for clean chunks).
        * ``y`` ``(N*dn, 1, L, C)`` or ``(N*dn, L, C)``: caption embedding of row ``b*dn + j``.
        * ``caption_dropout_mask``: bool ``(N,)``/``(1,)`` or a bool; selects only the adaLN null
          token (True -> ``null_caption_embedding[-1]``, False/None -> ``[-2]``); ``y`` is never
          replaced (pass null rows explicitly for unconditional branches).
        * ``xattn_mask`` ``(N*dn, 1, L)`` or ``(N*dn, L)``: 1 = valid caption token (>= 1 per row).
        * ``kv_range`` ``(N*dn, 2)`` or ``(dn, 2)`` int: absolute key-token range ``[start, end)`` of
          each chunk, in the coordinates ``[slice_point cached chunks | tokens of x]`` of one sample;
          with ``N*dn`` rows and ``N > 1`` they are in the official flattened-batch coordinates
          (sample ``b``'s keys start at ``b * (slice_point+dn) * tok``); ``dn`` rows apply to every sample.
        * ``kv_cache``/``slice_point``/``update_kv_cache``: the cache is used only when given and
          (``slice_point > 0`` or ``update_kv_cache``). Keys/values of every layer are
          ``cat(cache[:slice_point*tok], current)``; with ``update_kv_cache`` the current chunks'
          K (after k-LN and RoPE) and V are stored at chunk slots ``slice_point, slice_point+1, ...``
          (the last chunk is skipped when ``distill_nearly_clean_chunk``). ``slice_point`` also shifts
          the RoPE time positions by ``slice_point * frames_per_chunk``.
        * ``distill_dt``: for distill checkpoints, the step-size factor (``schedule.distill_dt_factor``);
          ``t_embedder(distill_dt)`` is added to the timestep embedding.

        Returns float32 ``(N, C_vae, T, H, W)`` velocity (Euler: ``x += v * (t_next - t)``).
        Differentiable with respect to ``x`` (the sampler runs it under no_grad; reward guidance
        through the model recomputes it with grad, the cache read but not written).
        """
        c = self.cfg
        dev = self.x_embedder.weight.device
        if x.dim() != 5 or x.shape[1] != c.vae_channels:
            raise ValueError(f"x must be (N, {c.vae_channels}, T, H, W), got {tuple(x.shape)}")
        N, _, T, H, W = x.shape
        if t.dim() != 2 or t.shape[0] != N:
            raise ValueError(f"t must be (N={N}, dn), got {tuple(t.shape)}")
        dn = t.shape[1]
        if T % dn or (T // dn) % c.t_patch_size or H % c.patch_size or W % c.patch_size:
            raise ValueError(f"x of {T} frames x {H}x{W} does not split into dn={dn} chunks of whole patches")
        fpc = T // dn  # latent frames per chunk
        xe = self._embed(x.to(dev))
        Tp, h, w = xe.shape[2:]
        S = Tp * h * w
        tok = S // dn
        hid = xe.flatten(2).transpose(1, 2).to(self.compute_dtype)  # (N, S, D), tokens (T h w)

        ctx = _Ctx()
        ctx.dn, ctx.tok, ctx.slice_point = dn, tok, int(slice_point)
        # ---- RoPE (time positions continue after the cached chunks)
        cos, sin = self.rope(Tp, h, w, t_prev=(fpc // c.t_patch_size) * ctx.slice_point)
        ctx.cos, ctx.sin = self.sequence.split(cos, dn, 0), self.sequence.split(sin, dn, 0)
        hid = self.sequence.split(hid, dn, 1)

        # ---- conditioning: t embedding (+ distill dt) + adaLN null token
        temb = self.t_embedder(t.to(dev).reshape(-1))
        if distill_dt is not None:
            temb = temb + self.t_embedder(torch.full((N * dn,), float(distill_dt), device=dev))
        if caption_dropout_mask is None or isinstance(caption_dropout_mask, bool):
            drop = torch.full((N,), bool(caption_dropout_mask), device=dev)
        else:
            drop = caption_dropout_mask.to(dev).bool().reshape(-1).expand(N)
        cond = temb.view(N, dn, -1) + self.y_embedder.adaln_token(drop)[:, None]
        ctx.condition = cond.to(self.compute_dtype)

        # ---- caption rows for cross-attention
        if y.dim() == 4:
            y = y.squeeze(1)
        if y.shape[0] != N * dn:
            raise ValueError(f"y must have N*dn={N * dn} rows, got {y.shape[0]}")
        mask = xattn_mask.reshape(y.shape[0], -1).to(dev).bool()
        if mask.shape[1] != y.shape[1]:
            raise ValueError(f"xattn_mask length {mask.shape[1]} != caption length {y.shape[1]}")
        if not bool(mask.any(dim=1).all()):
            raise ValueError("every caption row needs at least one valid token in xattn_mask")
        ctx.y_xattn = self.y_embedder.y_proj_xattn(y.to(dev).float()).to(self.compute_dtype)
        ctx.y_valid = mask

        # ---- block-causal ranges
        ctx.q_ranges = [(j * tok, (j + 1) * tok) for j in range(dn)]
        ctx.k_ranges = self._key_ranges(kv_range, N, dn, tok, ctx.slice_point)
        ctx.use_cache = kv_cache is not None and (ctx.slice_point > 0 or update_kv_cache)
        if ctx.slice_point > 0 and not ctx.use_cache:
            raise ValueError("slice_point > 0 needs a kv_cache holding the earlier chunks")
        ctx.kv_cache = kv_cache
        ctx.update_kv_cache = bool(update_kv_cache)
        ctx.skip_last_chunk = bool(distill_nearly_clean_chunk)

        for layer in self.videodit_blocks.layers:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                hid = checkpoint(layer, hid, ctx, use_reentrant=False)
            else:
                hid = layer(hid, ctx)
        out = self.videodit_blocks.final_layernorm(hid.float())
        out = F.linear(out, self.final_linear.linear.weight.float())
        return self._unpatchify(self.sequence.gather(out, dn, tok, 1), Tp, h, w)

    @staticmethod
    def _key_ranges(kv_range: IntRanges, N: int, dn: int, tok: int, slice_point: int):
        kr = torch.as_tensor(kv_range).to("cpu", torch.int64).reshape(-1, 2).tolist()
        s_k = (slice_point + dn) * tok
        if len(kr) == dn:
            rows = [kr] * N
        elif len(kr) == N * dn:
            # official flattened-batch coordinates: sample b's keys start at b * s_k
            rows = [[(a - b * s_k, e - b * s_k) for a, e in kr[b * dn : (b + 1) * dn]] for b in range(N)]
        else:
            raise ValueError(f"kv_range must have dn={dn} or N*dn={N * dn} rows, got {len(kr)}")
        for b, r in enumerate(rows):
            for j, (a, e) in enumerate(r):
                if not (0 <= a < e <= s_k):
                    raise ValueError(
                        f"kv_range row {b * dn + j} = [{a}, {e}) is outside the {s_k} key tokens "
                        f"({slice_point} cached + {dn} current chunks of {tok} tokens)"
                    )
        rows = [[tuple(x) for x in r] for r in rows]
        if all(r == rows[0] for r in rows):
            return rows[0]
        return rows

    # ------------------------------------------------------------------ info
    def new_kv_cache(self, *, max_chunks: int, tokens_per_chunk: int, batch: int = 1, offload: bool = False) -> KVCache:
        return KVCache.for_model(
            self, max_chunks=max_chunks, tokens_per_chunk=tokens_per_chunk, batch=batch, offload=offload
        )
