"""MAGI-1 engine: our own PyTorch implementation that loads the official 24B / 4.5B checkpoints.

Modules (importing this package imports neither torch nor safetensors; names resolve lazily):

* ``config``     -- official MagiConfig JSON (``load_magi_config``), presets (``preset(variant)``
  for 24b, 24b_distill, 4.5b, 4.5b_distill, tiny, tiny_distill), ``MagiConfigError``.
* ``dit``        -- ``MagiDiT``, the video DiT (official key names); ``rope`` and ``attention`` hold
  the 3D learned-band RoPE, the attention kernels (``RangeAttention``, ``CrossAttention``) and
  ``KVCache``.
* ``checkpoint`` -- official folder layout, ``load_dit`` (memory-mapped, per-process cache),
  ``missing_checkpoint_files``, ``write_official_checkpoint``.
* ``schedule``   -- t grid, window/stage sequence, per-chunk t and kv ranges, CFG scales, distill dt.
* ``sampler``    -- ``sample(model, SamplerSettings, noise, text rows, null rows, prefix, on_step=,
  on_chunk=)``: the chunk-wise autoregressive sampler (window of staggered chunks, Euler per chunk,
  KV cache with clean-chunk refresh, 3-pass CFG / distill single pass + nearly-clean blend, i2v/v2v
  prefix); ``draw_noise(seed, shape)`` (official CPU noise), ``latent_frames``.
* ``engine``     -- ``Magi1Generator`` (registry kind ``"magi1"``): DiT + VAE + T5 resident per
  process, per-prompt caption cache, batched candidates, ``on_step``/``on_chunk`` hooks, decoded uint8
  frames; ``resolve_magi_config(Magi1GeneratorConfig)``.
* ``parity``     -- CLI ``python -m pipeline.generators.magi1.parity sample|decode|encode`` (official jobs).
* ``tiny``       -- ``make_tiny_magi1(out)``: tiny random DiT (base + distill) / VAE / T5 / special
  tokens in the official folder layouts (idempotent, re-check without torch).

DiT API (for the sampler)
=========================

``model = load_dit(load_dir, magi_config_or_model_config, device=..., dtype=...)`` or
``MagiDiT(model_config).init_random_(seed)``; then::

    v = model(x, t, y, caption_dropout_mask, xattn_mask, kv_range, kv_cache=None, *,
              slice_point=0, update_kv_cache=False, distill_nearly_clean_chunk=False, distill_dt=None)

=====================  ===========================  =============================================
argument               shape / type                 meaning
=====================  ===========================  =============================================
x                      (N, 16, T, H, W) float       latents x 0.18215, ``dn`` chunks oldest first,
                                                    ``T = dn * frames_per_chunk`` (6 in MAGI)
t                      (N, dn) float                per chunk; 0 = noise, 1 = clean (clean_t 0.9999)
y                      (N*dn, 1, L, 4096)           T5 caption of row ``b*dn + j`` (null rows for
                                                    unconditional passes: y is never replaced)
caption_dropout_mask   bool (N,)/(1,) or bool       adaLN token only: True -> null token [-1],
                                                    False/None -> [-2]
xattn_mask             (N*dn, 1, L) int/bool        1 = valid caption token (>= 1 per row)
kv_range               (N*dn, 2) or (dn, 2) int     key range [start, end) per chunk in
                                                    ``[cached chunks | tokens of x]`` coordinates;
                                                    N*dn rows with N > 1 use the official
                                                    flattened-batch offsets ``b*(slice_point+dn)*tok``
kv_cache               KVCache or None              ``model.new_kv_cache(max_chunks=, tokens_per_chunk=,
                                                    batch=N, offload=kv_offload)``
slice_point            int                          number of earlier chunks whose K/V come from the
                                                    cache; also shifts RoPE time by
                                                    ``slice_point * frames_per_chunk``
update_kv_cache        bool                         store this call's K/V (all chunks, except the
                                                    last with ``distill_nearly_clean_chunk``) at chunk
                                                    slots ``slice_point, slice_point+1, ...``
distill_dt             float or None                distill checkpoints: ``schedule.distill_dt_factor``
=====================  ===========================  =============================================

Returns the float32 velocity ``(N, 16, T, H, W)``; Euler ``x += v * (t_next - t)``, clean estimate
``x + (1 - t) * v``. ``tok = model.tokens_per_chunk(frames_per_chunk, H, W)`` = 6*(H/2)*(W/2).

KV-cache contract. The cache is consulted only when ``kv_cache`` is given and (``slice_point > 0``
or ``update_kv_cache``). In every layer the keys/values are ``cat(cache[:slice_point*tok],
current)`` with K stored after k-LayerNorm and RoPE (so a cached chunk keeps the RoPE time of the
position it was written at). Only slots ``< slice_point`` are ever read; writing noisy chunks to
later slots is harmless because the sampler rewrites a slot with the chunk's clean K/V (the window
slide: the finished chunk is prepended to ``x`` at ``clean_t`` with a null caption row, kv range =
itself, ``update_kv_cache=True``) before advancing ``slice_point`` past it. The same attention is
obtained as recomputing those chunks inside ``x`` (tested). Per-stage KV ranges come from
``schedule.chunk_kv_ranges`` (``noise2clean_kvrange = [5, 4, 3, 2]``: a stage-s chunk sees itself
and ``k-1`` older chunks; a clean chunk sees itself). CFG (3 passes for base models) and the distill
extra pass are the sampler's job; ``schedule.cfg_scales`` gives the per-chunk scales.

Precision layout (official): the transformer layers run in ``dtype`` (bf16 for real checkpoints);
embedders, rope, ``final_linear``, self-attention q/k norms, both post norms and the final norm are
float32 parameters, q/k norm + RoPE run in fp32, ``linear_proj`` runs in fp32, gates are applied and
post-normed in fp32; the cross-attention q/k norms run in ``dtype``.

Seams for parallelism (no parallel code inside the model):

* Ulysses / context parallelism: ``model.sequence`` (``WholeSequence``) splits the tokens after the
  embedding and gathers them before the final linear, per chunk, so a rank may hold a share of each
  chunk's tokens; ``layer.self_attention.core_attention`` (``BlockCausalAttention``) is the only
  place where tokens interact and the only user of the KV cache; it receives ``q (N,H,S,hd)``,
  ``k, v (N,G,S,hd)`` of all tokens and the per-chunk ranges, so a wrapper can all-to-all sequence
  shards to head shards around it (``ulysses.py``). ``cross_attention`` is a separate module (each
  chunk sees only its own caption row). The sampler's CFG passes can run on separate ranks
  (``cfg_parallel.py``).
* Tensor parallelism (module names are the official ones): column-parallel by heads
  ``self_attention.linear_qkv.{q,qx,k,v}`` and by groups ``self_attention.linear_kv_xattn`` (output is
  per group ``[k_g | v_g]``); row-parallel ``self_attention.linear_proj`` (its input is permuted
  ``(n hn d) -> (hn n d)`` with hn=8, so an 8-way/2-way/4-way contiguous row split gives each rank its
  own heads' [self | cross] features); ``mlp.linear_fc1`` column-parallel (SwiGLU: shard the gate and
  up halves alike), ``mlp.linear_fc2`` row-parallel.

Not supported yet: fp8 checkpoints (``inference_weight.fp8.distill``; detected, clear error),
pipeline parallelism (``pp_size > 1``), ``cp_shuffle_overlap``, ``ulysses_overlap_degree > 1``,
CUDA graphs, zstd-compressed shards.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "MagiConfig": "config",
    "MagiModelConfig": "config",
    "MagiRuntimeConfig": "config",
    "MagiEngineConfig": "config",
    "MagiConfigError": "config",
    "load_magi_config": "config",
    "parse_magi_config": "config",
    "preset": "config",
    "tiny_model_config": "config",
    "VARIANTS": "config",
    "MagiDiT": "dit",
    "KVCache": "attention",
    "RangeAttention": "attention",
    "load_dit": "checkpoint",
    "missing_checkpoint_files": "checkpoint",
    "write_official_checkpoint": "checkpoint",
    "Magi1CheckpointError": "checkpoint",
    "Magi1NotSupportedError": "checkpoint",
    "sample": "sampler",
    "SamplerSettings": "sampler",
    "draw_noise": "sampler",
    "Magi1Generator": "engine",
    "resolve_magi_config": "engine",
    "make_tiny_magi1": "tiny",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
