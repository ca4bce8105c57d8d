"""A deliberately naive MAGI-1 DiT forward written from the documented conventions
(SandAI-org/MAGI-1: inference/model/dit/dit_module.py), used only by the tests: explicit loops over heads, explicit
attention masks, explicit RoPE angles and index permutations, no code shared with the package."""

from __future__ import annotations

import math

import torch


def ln(x, w, b, eps, one_p):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    gamma = w + 1 if one_p else w
    return (x - mu) / torch.sqrt(var + eps) * gamma + b


def lin(x, P, name, bias=False):
    y = x @ P[name + ".weight"].T
    return y + P[name + ".bias"] if bias else y


def rope_angle_table(bands, T, h, w, t_prev):
    """(T*h*w, 3*nb) angles, rows ordered (t, i, j); [t bands | h bands | w bands]."""
    Ttot = T + t_prev
    r = math.sqrt(h * w / 256.0)
    rows = []
    for tt in range(T):
        for i in range(h):
            for j in range(w):
                pt = float(t_prev + tt)
                if Ttot > 1:
                    pt = pt / (Ttot - 1) * (Ttot - 1)
                ph = i - (h - 1) / 2
                if h > 1:
                    ph = ph / (h - 1) * (h / r - 1)
                pw = j - (w - 1) / 2
                if w > 1:
                    pw = pw / (w - 1) * (w / r - 1)
                rows.append(torch.cat([pt * bands, ph * bands, pw * bands]))
    return torch.stack(rows)


def rotate(x, ang):
    """x (S, hd), ang (S, 3nb): rotate-half on channels [0:3nb] paired with [3nb:6nb]."""
    half = ang.shape[1]
    out = x.clone()
    for c in range(half):
        a, b = x[:, c], x[:, c + half]
        out[:, c] = a * torch.cos(ang[:, c]) - b * torch.sin(ang[:, c])
        out[:, c + half] = b * torch.cos(ang[:, c]) + a * torch.sin(ang[:, c])
    return out


def naive_forward(P, cfg, x, t, y, drop, mask, kv_rows, distill_dt=None):
    """kv_rows: list over batch of list over chunks of (start, end) in the sample's token coords
    (no cache). Returns (N, C_vae, T, H, W)."""
    N, Cv, T, H, W = x.shape
    dn = t.shape[1]
    D, Hh, G, hd = cfg.hidden_size, cfg.num_attention_heads, cfg.num_query_groups, cfg.kv_channels
    eps, one_p = cfg.layernorm_epsilon, cfg.apply_layernorm_1p
    h, w = H // 2, W // 2
    S = T * h * w
    tok = S // dn
    xin = x * cfg.x_rescale_factor
    if cfg.half_channel_vae:
        xin = torch.cat([xin, xin], 1)
    Wc = P["x_embedder.weight"][:, :, 0]  # (D, C, 2, 2)
    patches = xin.reshape(N, xin.shape[1], T, h, 2, w, 2)
    tokens = torch.einsum("nctiajb,dcab->ntijd", patches, Wc).reshape(N, S, D)

    # conditioning
    k = torch.arange(128, dtype=torch.float32)
    freqs = torch.exp(-math.log(10000.0) * k / 128)

    def temb(tv):
        args = tv[:, None] * 1000.0 * freqs[None]
        f = torch.cat([torch.cos(args), torch.sin(args)], -1)
        return lin(torch.nn.functional.silu(lin(f, P, "t_embedder.mlp.0", True)), P, "t_embedder.mlp.2", True)

    te = temb(t.reshape(-1))
    if distill_dt is not None:
        te = te + temb(torch.full((N * dn,), float(distill_dt)))
    null = P["y_embedder.null_caption_embedding"]
    cond = torch.zeros(N, dn, te.shape[-1])
    for b in range(N):
        tokv = null[-1] if bool(drop[b]) else null[-2]
        ad = lin(tokv[None], P, "y_embedder.y_proj_adaln.0", True)[0]
        for j in range(dn):
            cond[b, j] = te[b * dn + j] + ad
    yx = torch.nn.functional.silu(
        lin(y.reshape(N * dn, y.shape[-2], y.shape[-1]), P, "y_embedder.y_proj_xattn.0", True)
    )

    ang = rope_angle_table(P["rope.bands"], T, h, w, 0)
    hs = tokens
    d = 2 * Hh * hd // 16
    for li in range(cfg.num_layers):
        pre = f"videodit_blocks.layers.{li}."
        out_all = torch.zeros(N, S, D)
        for b in range(N):
            xb = hs[b]
            xn = ln(
                xb,
                P[pre + "self_attention.linear_qkv.layer_norm.weight"],
                P[pre + "self_attention.linear_qkv.layer_norm.bias"],
                eps,
                False,
            )
            q = lin(xn, P, pre + "self_attention.linear_qkv.q").view(S, Hh, hd)
            qx = lin(xn, P, pre + "self_attention.linear_qkv.qx").view(S, Hh, hd)
            kk = lin(xn, P, pre + "self_attention.linear_qkv.k").view(S, G, hd)
            vv = lin(xn, P, pre + "self_attention.linear_qkv.v").view(S, G, hd)
            allowed = torch.zeros(S, S, dtype=torch.bool)
            for j in range(dn):
                s0, s1 = kv_rows[b][j]
                allowed[j * tok : (j + 1) * tok, s0:s1] = True
            core = torch.zeros(S, Hh * hd)
            for head in range(Hh):
                g = head // (Hh // G)
                qh = rotate(
                    ln(
                        q[:, head],
                        P[pre + "self_attention.q_layernorm.weight"],
                        P[pre + "self_attention.q_layernorm.bias"],
                        eps,
                        one_p,
                    ),
                    ang,
                )
                kh = rotate(
                    ln(
                        kk[:, g],
                        P[pre + "self_attention.k_layernorm.weight"],
                        P[pre + "self_attention.k_layernorm.bias"],
                        eps,
                        one_p,
                    ),
                    ang,
                )
                sc = (qh @ kh.T) / math.sqrt(hd)
                sc = sc.masked_fill(~allowed, float("-inf"))
                core[:, head * hd : (head + 1) * hd] = torch.softmax(sc, -1) @ vv[:, g]
            cross = torch.zeros(S, Hh * hd)
            for j in range(dn):
                row = b * dn + j
                valid = mask.reshape(N * dn, -1)[row].bool()
                kvx = lin(yx[row][valid], P, pre + "self_attention.linear_kv_xattn").view(-1, G, 2 * hd)
                for head in range(Hh):
                    g = head // (Hh // G)
                    qh = ln(
                        qx[j * tok : (j + 1) * tok, head],
                        P[pre + "self_attention.q_layernorm_xattn.weight"],
                        P[pre + "self_attention.q_layernorm_xattn.bias"],
                        eps,
                        one_p,
                    )
                    kh = ln(
                        kvx[:, g, :hd],
                        P[pre + "self_attention.k_layernorm_xattn.weight"],
                        P[pre + "self_attention.k_layernorm_xattn.bias"],
                        eps,
                        one_p,
                    )
                    vh = kvx[:, g, hd:]
                    a = torch.softmax(qh @ kh.T / math.sqrt(hd), -1) @ vh
                    cross[j * tok : (j + 1) * tok, head * hd : (head + 1) * hd] = a
            cat = torch.cat([core, cross], -1)  # (S, 2*H*hd) laid out (n, hn, d)
            perm = torch.zeros_like(cat)
            for n in range(2):
                for hn in range(8):
                    perm[:, (hn * 2 + n) * d : (hn * 2 + n + 1) * d] = cat[:, (n * 8 + hn) * d : (n * 8 + hn + 1) * d]
            proj = lin(perm, P, pre + "self_attention.linear_proj")
            gates = torch.tanh(lin(torch.nn.functional.silu(cond[b]), P, pre + "ada_modulate_layer.proj.0", True))
            g_msa, g_mlp = gates[:, :D], gates[:, D:]
            gm = torch.repeat_interleave(g_msa, tok, 0)
            gl = torch.repeat_interleave(g_mlp, tok, 0)
            xb = xb + ln(
                proj * gm, P[pre + "self_attn_post_norm.weight"], P[pre + "self_attn_post_norm.bias"], eps, one_p
            )
            m = ln(xb, P[pre + "mlp.layer_norm.weight"], P[pre + "mlp.layer_norm.bias"], eps, False)
            m = lin(m, P, pre + "mlp.linear_fc1")
            if cfg.gated_linear_unit:
                F_ = m.shape[-1] // 2
                m = torch.nn.functional.silu(m[:, :F_]) * m[:, F_:]
            else:
                m = 0.5 * m * (1 + torch.erf(m / math.sqrt(2)))
            m = lin(m, P, pre + "mlp.linear_fc2")
            xb = xb + ln(m * gl, P[pre + "mlp_post_norm.weight"], P[pre + "mlp_post_norm.bias"], eps, one_p)
            out_all[b] = xb
        hs = out_all
    fin = ln(hs, P["videodit_blocks.final_layernorm.weight"], P["videodit_blocks.final_layernorm.bias"], eps, one_p)
    fin = lin(fin, P, "final_linear.linear")  # (N, S, 4*C)
    C = cfg.out_channels
    out = torch.zeros(N, C, T, H, W)
    for tt in range(T):
        for i in range(h):
            for j in range(w):
                s = (tt * h + i) * w + j
                for a in range(2):
                    for bb in range(2):
                        out[:, :, tt, 2 * i + a, 2 * j + bb] = fin[:, s, (a * 2 + bb) * C : (a * 2 + bb + 1) * C]
    if cfg.half_channel_vae:
        out = out[:, : C // 2]
    return out / cfg.x_rescale_factor
