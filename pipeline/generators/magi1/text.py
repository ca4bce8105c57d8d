"""MAGI-1 text conditioning: T5-v1.1-XXL caption embeddings, special tokens, per-prompt caching.

Public API
----------
``MagiTextEncoder.from_folder(t5_path, special_tokens_path=None, device="cpu", dtype=torch.float32,
max_length=800, cache_dir=None, memory_cache_size=64, clean_text=True) -> MagiTextEncoder``
    ``t5_path`` is the official ``ckpt/t5`` folder (which holds ``t5-v1_1-xxl/``) or the
    ``t5-v1_1-xxl`` folder itself: a Hugging Face T5 folder (``config.json``, tokenizer files
    ``spiece.model``/``tokenizer.json`` + ``tokenizer_config.json``, weights
    ``pytorch_model-0000{1,2}-of-00002.bin`` + index, or safetensors).  Loaded with
    ``AutoTokenizer`` + ``transformers.T5EncoderModel``; upstream runs T5 in float32.
    ``special_tokens_path`` is the official ``special_tokens.npz`` (arrays ``caption_token``,
    ``logo_token`` (1, 4096) and ``other_tokens`` (100, 4096)); needed only for special tokens.
    A folder whose tokenizer is only ``spiece.model`` (the DeepFloyd layout) needs the
    ``sentencepiece`` package, which this project does not install yet; with a ``tokenizer.json`` it
    does not (a clear ``GeneratorLoadError`` says so).

``enc.encode(prompts, device=None) -> (caption_embs, emb_masks)``
    ``caption_embs`` float32 ``(B, 1, 800, C)`` and ``emb_masks`` int64 ``(B, 800)``: exactly what the
    official ``get_txt_embeddings`` returns for each prompt (text cleaned twice with the DeepFloyd
    caption cleaner, tokenised with ``max_length=800``, ``padding="max_length"``, truncation, ``</s>``
    appended; mask 1 on real tokens incl. ``</s>``).  No special tokens yet.  Cached per prompt.

``enc.encode_for_chunks(prompts, num_chunks, options=SpecialTokenOptions(), clean_chunks=0,
null_caption_embedding=None) -> (embs (B, num_chunks, 800, C), masks (B, num_chunks, 800) int64)``
    The per-chunk caption rows of the official ``_process_txt_embeddings``: the prompt repeated per
    denoised chunk with special tokens prepended (see :func:`caption_rows`), preceded by null rows
    (mask 0) for ``clean_chunks`` prefix chunks.  ``null_caption_rows`` builds the null rows of the
    unconditional branches (first 50 tokens valid, optional negative special tokens).

Special tokens (official env switches -> explicit :class:`SpecialTokenOptions` fields):
``PAD_STATIC``->``static_first_frames``, ``PAD_DYNAMIC``->``dynamic_first_frames``,
``PAD_BORDERNESS``->``borderness``, ``PAD_HQ``->``hq``, ``PAD_THREE_D_MODEL``->``three_d_model``,
``PAD_TWO_D_ANIME``->``two_d_anime``, ``PAD_DURATION``->``duration``, ``NEG_PROMPT``->``negative``.
Defaults follow the shipped ``run.sh`` (``PAD_HQ=1 PAD_DURATION=1``).  Tokens are applied in that
order, each one *prepended* (so the last applied comes first) and the sequence cut back to 800; each
adds a valid mask entry.  The duration token of chunk ``i`` of ``n`` is ``other_tokens[7 + min(n-1-i, 7)]``.
Token values go through float16 as upstream.

Caching: an in-memory LRU (``memory_cache_size`` prompts) and, with ``cache_dir``, one safetensors file
per prompt under ``cache_dir/<model identity>/<sha256(prompt)>.safetensors``.  The model identity hashes
``config.json``, the tokenizer files, the weight file names and sizes plus 1-MiB samples (start, middle,
end) of each weight file, ``max_length``, the cleaning flag and the dtype.  ``enc.stats`` counts memory hits, disk hits and encoded prompts.

Caption cleaning: ``clean_caption`` follows the DeepFloyd/MAGI rules; BeautifulSoup (not a dependency
here) is replaced by the standard-library HTML parser for tag stripping, which agrees on plain text.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.files import atomic_path
from pipeline.weight_files import truncated_in

from ..base import GeneratorLoadError
from ..weights import indexed_shards

__all__ = [
    "MagiTextEncoder",
    "SpecialTokens",
    "SpecialTokenOptions",
    "caption_rows",
    "null_caption_rows",
    "clean_caption",
    "preprocess_prompt",
    "resolve_t5_folder",
    "CAPTION_MAX_LENGTH",
    "NULL_TOKEN_LENGTH",
    "T5_SUBFOLDER",
]

CAPTION_MAX_LENGTH = 800
NULL_TOKEN_LENGTH = 50  # valid tokens of a null caption row (hard-coded upstream)
T5_SUBFOLDER = "t5-v1_1-xxl"
MAX_DURATION = 8  # duration tokens: "1 chunk remains" ... "8 or more chunks remain"

# =============================================================================== caption cleaning
_DASHES = (
    "[\u002d\u058a\u05be\u1400\u1806\u2010-\u2015\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u301c\u3030\u30a0"
    "\ufe31\ufe32\ufe58\ufe63\uff0d]+"
)
_URL_TAIL = r"[a-zA-Z0-9.\-]+[.](?:com|co|ru|net|org|edu|gov|it)[\w/-]*\b\/?(?!@)))"
_BAD_PUNCT = r"[#®•©™&@·º½¾¿¡§~\)\(\]\[\}\{\|\\/\*]{1,}"

# (pattern, replacement) applied in order; "HTML" marks the tag-stripping step and "BASIC" the
# ftfy/unescape step, "DASHSPLIT" the conditional underscore/dash split.
_RULES: tuple[tuple[str, str], ...] = (
    (r"<person>", "person"),
    (r"\b((?:https?:(?:\/{1,3}|[a-zA-Z0-9%])|" + _URL_TAIL, ""),
    (r"\b((?:www:(?:\/{1,3}|[a-zA-Z0-9%])|" + _URL_TAIL, ""),
    ("HTML", ""),
    (r"@[\w\d]+\b", ""),
    (r"[\u31c0-\u31ef]+", ""),
    (r"[\u31f0-\u31ff]+", ""),
    (r"[\u3200-\u32ff]+", ""),
    (r"[\u3300-\u33ff]+", ""),
    (r"[\u3400-\u4dbf]+", ""),
    (r"[\u4dc0-\u4dff]+", ""),
    (r"[\u4e00-\u9fff]+", ""),
    (_DASHES, "-"),
    (r"[`´«»“”¨]", '"'),
    (r"[‘’]", "'"),
    (r"&quot;?", ""),
    (r"&amp", ""),
    (r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}", " "),
    (r"\d:\d\d\s+$", ""),
    (r"\\n", " "),
    (r"#\d{1,3}\b", ""),
    (r"#\d{5,}\b", ""),
    (r"\b\d{6,}\b", ""),
    (r"[\S]+\.(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)", ""),
    (r"[\"\']{2,}", r'"'),
    (r"[\.]{2,}", r" "),
    (_BAD_PUNCT, r" "),
    (r"\s+\.\s+", r" "),
    ("DASHSPLIT", " "),
    ("BASIC", ""),
    (r"\b[a-zA-Z]{1,3}\d{3,15}\b", ""),
    (r"\b[a-zA-Z]+\d+[a-zA-Z]+\b", ""),
    (r"\b\d+[a-zA-Z]+\d+\b", ""),
    (r"(worldwide\s+)?(free\s+)?shipping", ""),
    (r"(free\s)?download(\sfree)?", ""),
    (r"\bclick\b\s(?:for|on)\s\w+", ""),
    (r"\b(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)(\simage[s]?)?", ""),
    (r"\bpage\s+\d+\b", ""),
    (r"\b\d*[a-zA-Z]+\d+[a-zA-Z]+\d+[a-zA-Z\d]*\b", r" "),
    (r"\b\d+\.?\d*[xх×]\d+\.?\d*\b", ""),
    (r"\b\s+\:\s+", r": "),
    (r"(\D[,\./])\b", r"\1 "),
    (r"\s+", " "),
    (r"^[\"\']([\w\W]+)[\"\']$", r"\1"),
    (r"^[\'\_,\-\:;]", r""),
    (r"[\'\_,\-\:\-\+]$", r""),
    (r"^\.\S+$", ""),
)
_COMPILED = tuple((p if p in ("HTML", "BASIC", "DASHSPLIT") else re.compile(p), r) for p, r in _RULES)
_DASH_OR_UNDERSCORE = re.compile(r"(?:\-|\_)")


class _TextOnly(HTMLParser):
    """Collects the character data of an HTML fragment (tags and comments dropped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _strip_html(text: str) -> str:
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def _basic_clean(text: str) -> str:
    import ftfy

    text = ftfy.fix_text(text)
    return html.unescape(html.unescape(text)).strip()


def clean_caption(caption: str) -> str:
    """One pass of the DeepFloyd-IF caption cleaner used by MAGI-1's T5 embedder."""
    text = urllib.parse.unquote_plus(str(caption)).strip().lower()
    for rule, repl in _COMPILED:
        if rule == "HTML":
            text = _strip_html(text)
        elif rule == "BASIC":
            text = _basic_clean(text)
        elif rule == "DASHSPLIT":
            if len(_DASH_OR_UNDERSCORE.findall(text)) > 3:
                text = _DASH_OR_UNDERSCORE.sub(repl, text)
        elif isinstance(rule, re.Pattern):
            text = rule.sub(repl, text)
    return text.strip()


def preprocess_prompt(prompt: str, clean: bool = True) -> str:
    """Upstream ``text_preprocessing``: the cleaner applied twice, else ``lower().strip()``."""
    if clean:
        return clean_caption(clean_caption(prompt))
    return prompt.lower().strip()


# ================================================================================ special tokens
@dataclass(frozen=True)
class SpecialTokenOptions:
    """Which learned special tokens to prepend (the official ``PAD_*``/``NEG_PROMPT`` env switches)."""

    hq: bool = True  # PAD_HQ
    duration: bool = True  # PAD_DURATION
    static_first_frames: bool = False  # PAD_STATIC
    dynamic_first_frames: bool = False  # PAD_DYNAMIC
    borderness: bool = False  # PAD_BORDERNESS
    three_d_model: bool = False  # PAD_THREE_D_MODEL
    two_d_anime: bool = False  # PAD_TWO_D_ANIME
    negative: bool = False  # NEG_PROMPT: negative tokens on the null rows

    @classmethod
    def none(cls) -> SpecialTokenOptions:
        return cls(hq=False, duration=False)

    def caption_keys(self) -> list[str]:
        """Keys in upstream application order (each is prepended; ``duration`` last)."""
        order = [
            ("static_first_frames", "STATIC_FIRST_FRAMES"),
            ("dynamic_first_frames", "DYNAMIC_FIRST_FRAMES"),
            ("borderness", "BORDERNESS"),
            ("hq", "HQ"),
            ("three_d_model", "THREE_D_MODEL"),
            ("two_d_anime", "TWO_D_ANIME"),
            ("duration", "DURATION"),
        ]
        return [key for attr, key in order if getattr(self, attr)]

    def negative_keys(self) -> list[str]:
        return ["CAPTION", "LOGO", "TRANS", "BORDERNESS"] if self.negative else []


# name -> row of other_tokens (caption/logo tokens live in their own arrays)
_OTHER_ROWS = {
    "TRANS": 0,
    "HQ": 1,
    "STATIC_FIRST_FRAMES": 2,
    "DYNAMIC_FIRST_FRAMES": 3,
    "BORDERNESS": 4,
    "THREE_D_MODEL": 15,
    "TWO_D_ANIME": 16,
}
_DURATION_FIRST_ROW = 7  # DURATION_TOKEN_{k+1} = other_tokens[7 + k], k = 0..7


class SpecialTokens:
    """The learned tokens of ``special_tokens.npz`` (float16-rounded, stored as float32 (1, C))."""

    def __init__(self, caption: torch.Tensor, logo: torch.Tensor, other: torch.Tensor, source: str = ""):
        self.caption, self.logo, self.other, self.source = caption, logo, other, source

    @property
    def dim(self) -> int:
        return int(self.other.shape[-1])

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> SpecialTokens:
        path = Path(path)
        if not path.is_file():
            raise GeneratorLoadError(f"MAGI-1 special tokens file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k]) for k in data.files}
        except Exception as exc:
            raise GeneratorLoadError(f"cannot read special tokens {str(path)!r}: {exc}") from exc
        missing = [k for k in ("caption_token", "logo_token", "other_tokens") if k not in arrays]
        if missing:
            raise GeneratorLoadError(f"special tokens file {str(path)!r} lacks arrays {missing}")
        other = arrays["other_tokens"]
        need = max(max(_OTHER_ROWS.values()), _DURATION_FIRST_ROW + MAX_DURATION - 1) + 1
        if other.ndim != 2 or other.shape[0] < need:
            raise GeneratorLoadError(
                f"special tokens {str(path)!r}: other_tokens must be (>= {need}, C), got {other.shape}"
            )
        dim = other.shape[1]
        for k in ("caption_token", "logo_token"):
            if arrays[k].shape != (1, dim):
                raise GeneratorLoadError(f"special tokens {str(path)!r}: {k} must be (1, {dim}), got {arrays[k].shape}")

        def to_t(a: np.ndarray) -> torch.Tensor:  # upstream: .astype(np.float16) -> txt dtype
            return torch.from_numpy(a.astype(np.float16)).float()

        return cls(to_t(arrays["caption_token"]), to_t(arrays["logo_token"]), to_t(other), str(path))

    def token(self, key: str) -> torch.Tensor:
        if key == "CAPTION":
            return self.caption
        if key == "LOGO":
            return self.logo
        if key in _OTHER_ROWS:
            r = _OTHER_ROWS[key]
            return self.other[r : r + 1]
        raise KeyError(f"unknown special token {key!r}")

    def duration(self, chunks_remaining: int) -> torch.Tensor:
        """Token for "``chunks_remaining`` chunks remain" (1..8, larger values clip to 8)."""
        k = min(max(int(chunks_remaining), 1), MAX_DURATION) - 1
        r = _DURATION_FIRST_ROW + k
        return self.other[r : r + 1]


def _prepend(token: torch.Tensor, embs: torch.Tensor, masks: torch.Tensor | None):
    """Prepend (1, C) ``token`` to (B, n, L, C) rows and a valid entry to (B, n, L) masks; cut to L."""
    b, n, length, c = embs.shape
    tok = token.to(device=embs.device, dtype=embs.dtype).view(1, 1, 1, c).expand(b, n, 1, c)
    embs = torch.cat([tok, embs], dim=2)[:, :, :length]
    if masks is not None:
        ones = torch.ones(b, n, 1, dtype=masks.dtype, device=masks.device)
        masks = torch.cat([ones, masks], dim=2)[:, :, :length]
    return embs, masks


def caption_rows(
    caption_embs: torch.Tensor,
    emb_masks: torch.Tensor,
    num_chunks: int,
    *,
    special_tokens: SpecialTokens | None = None,
    options: SpecialTokenOptions = SpecialTokenOptions(),
    clean_chunks: int = 0,
    null_caption_embedding: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-chunk text rows as the official ``_process_txt_embeddings``.

    ``caption_embs`` (B, 1, L, C) and ``emb_masks`` (B, L) from :meth:`MagiTextEncoder.encode`;
    returns (B, num_chunks, L, C) and (B, num_chunks, L) (mask dtype kept).  The first
    ``clean_chunks`` rows are ``null_caption_embedding`` (L, C) with mask 0; the other
    ``num_chunks - clean_chunks`` rows carry the prompt with the selected special tokens; the duration
    token of denoised chunk ``i`` of ``n`` says ``n - i`` chunks remain (clipped to 8)."""
    if caption_embs.ndim != 4 or caption_embs.shape[1] != 1:
        raise ValueError(f"caption_embs must be (B,1,L,C), got {tuple(caption_embs.shape)}")
    b, _, length, c = caption_embs.shape
    if emb_masks.shape != (b, length):
        raise ValueError(f"emb_masks must be {(b, length)}, got {tuple(emb_masks.shape)}")
    n = int(num_chunks) - int(clean_chunks)
    if n < 1 or clean_chunks < 0:
        raise ValueError(f"need 0 <= clean_chunks < num_chunks, got {clean_chunks}, {num_chunks}")
    keys = options.caption_keys()
    if keys and special_tokens is None:
        raise ValueError(f"special tokens {keys} requested but no special_tokens.npz was given")
    if special_tokens is not None and keys and special_tokens.dim != c:
        raise ValueError(f"special tokens are {special_tokens.dim}-dim but the caption embedding is {c}-dim")
    embs = caption_embs.expand(b, n, length, c)
    masks = emb_masks[:, None, :].expand(b, n, length)
    for key in keys:
        assert special_tokens is not None  # keys come from the special tokens
        if key == "DURATION":
            rows = [_prepend(special_tokens.duration(n - i), embs[:, i : i + 1], masks[:, i : i + 1]) for i in range(n)]
            embs = torch.cat([r[0] for r in rows], dim=1)
            masks = torch.cat([r[1] for r in rows], dim=1)
        else:
            embs, masks = _prepend(special_tokens.token(key), embs, masks)
    if clean_chunks:
        if null_caption_embedding is None:
            raise ValueError("clean_chunks > 0 needs the DiT's null_caption_embedding")
        null = null_caption_embedding.reshape(1, 1, length, c).to(device=embs.device, dtype=embs.dtype)
        embs = torch.cat([null.expand(b, clean_chunks, length, c), embs], dim=1)
        masks = torch.cat([torch.zeros(b, clean_chunks, length, dtype=masks.dtype, device=masks.device), masks], dim=1)
    return embs.contiguous(), masks.contiguous()


def null_caption_rows(
    null_caption_embedding: torch.Tensor,
    num_chunks: int,
    *,
    special_tokens: SpecialTokens | None = None,
    options: SpecialTokenOptions = SpecialTokenOptions(),
    mask_dtype: torch.dtype = torch.int64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Null rows of the unconditional branches (official ``_process_null_embeddings``):
    (1, n, L, C) copies of the DiT's ``null_caption_embedding`` (L, C), negative special tokens
    prepended when ``options.negative``; masks (1, n, L) with the first 50 tokens valid."""
    length, c = null_caption_embedding.shape[-2:]
    embs = null_caption_embedding.reshape(1, 1, length, c).expand(1, int(num_chunks), length, c)
    for key in options.negative_keys():
        if special_tokens is None:
            raise ValueError("negative special tokens requested but no special_tokens.npz was given")
        embs, _ = _prepend(special_tokens.token(key), embs, None)
    masks = torch.zeros(1, int(num_chunks), length, dtype=mask_dtype, device=embs.device)
    masks[:, :, :NULL_TOKEN_LENGTH] = 1
    return embs.contiguous(), masks


# ====================================================================================== encoder
def resolve_t5_folder(path: str | os.PathLike) -> Path:
    """``ckpt/t5`` (with ``t5-v1_1-xxl/`` inside) or the T5 folder itself -> the T5 folder."""
    p = Path(path)
    if not p.is_dir():
        raise GeneratorLoadError(f"T5 folder {str(p)!r} does not exist")
    if (p / T5_SUBFOLDER / "config.json").is_file():
        return p / T5_SUBFOLDER
    if (p / "config.json").is_file():
        return p
    raise GeneratorLoadError(
        f"T5 folder {str(p)!r} has no config.json (expected the official ckpt/t5 folder with {T5_SUBFOLDER}/ inside)"
    )


_TOKENIZER_FILES = ("tokenizer.json", "spiece.model")
_TOKENIZER_META = ("tokenizer_config.json", "special_tokens_map.json")


def _t5_weight_files(folder: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            return [index] + indexed_shards(index, "T5 folder")
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    raise GeneratorLoadError(
        f"T5 folder {str(folder)!r} has no weights (pytorch_model.bin.index.json + shards, or model.safetensors)"
    )


_SAMPLE = 1 << 20


def _model_identity(folder: Path, weights: list[Path], max_length: int, clean: bool, dtype: torch.dtype) -> str:
    h = hashlib.sha256()
    h.update(b"magi1-t5-v1\0")
    for name in ("config.json",) + _TOKENIZER_FILES + _TOKENIZER_META:
        fp = folder / name
        if fp.is_file():
            h.update(name.encode() + b"\0" + hashlib.sha256(fp.read_bytes()).digest())
    for fp in weights:  # names, sizes and three 1-MiB samples of every weight file (cheap at 19 GB)
        size = fp.stat().st_size
        h.update(f"{fp.name}:{size}\0".encode())
        with open(fp, "rb") as fh:
            for offset in sorted({0, max(size // 2 - _SAMPLE // 2, 0), max(size - _SAMPLE, 0)}):
                fh.seek(offset)
                h.update(fh.read(_SAMPLE))
    h.update(f"len={max_length};clean={int(clean)};dtype={dtype}".encode())
    return h.hexdigest()


def _has_sentencepiece() -> bool:
    import importlib.util

    return importlib.util.find_spec("sentencepiece") is not None


@dataclass
class CacheStats:
    memory_hits: int = 0
    disk_hits: int = 0
    encoded: int = 0  # prompts run through T5
    encoder_calls: int = 0  # T5 forward passes


class MagiTextEncoder:
    """T5-XXL caption encoder with the MAGI-1 conventions. See the module docstring."""

    def __init__(
        self,
        tokenizer: Any,
        model: Any,  # a transformers T5EncoderModel
        *,
        special_tokens: SpecialTokens | None = None,
        max_length: int = CAPTION_MAX_LENGTH,
        clean_text: bool = True,
        identity: str = "in-memory",
        cache_dir: str | os.PathLike | None = None,
        memory_cache_size: int = 64,
        batch_size: int = 1,
    ):
        self.tokenizer = tokenizer
        self.model = model
        self.special_tokens = special_tokens
        self.max_length = int(max_length)
        self.clean_text = bool(clean_text)
        self.identity = identity
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.memory_cache_size = int(memory_cache_size)
        self.batch_size = max(int(batch_size), 1)
        self.stats = CacheStats()
        self._memory: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------- loading
    @classmethod
    def from_folder(
        cls,
        t5_path: str | os.PathLike,
        special_tokens_path: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        *,
        max_length: int = CAPTION_MAX_LENGTH,
        cache_dir: str | os.PathLike | None = None,
        memory_cache_size: int = 64,
        clean_text: bool = True,
        batch_size: int = 1,
    ) -> MagiTextEncoder:
        folder = resolve_t5_folder(t5_path)
        if not any((folder / n).is_file() for n in _TOKENIZER_FILES):
            raise GeneratorLoadError(f"T5 folder {str(folder)!r} has no tokenizer ({' or '.join(_TOKENIZER_FILES)})")
        if not (folder / "tokenizer.json").is_file() and not _has_sentencepiece():
            raise GeneratorLoadError(
                f"T5 folder {str(folder)!r} has only spiece.model: reading it needs the 'sentencepiece' "
                "package, which is not installed; install it or add a tokenizer.json to the folder "
                "(e.g. saved once by T5TokenizerFast.save_pretrained on a machine with sentencepiece)"
            )
        weights = _t5_weight_files(folder)
        special = SpecialTokens.from_npz(special_tokens_path) if special_tokens_path is not None else None
        from transformers import AutoTokenizer, T5EncoderModel

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except Exception as exc:
            raise GeneratorLoadError(f"cannot load the T5 tokenizer from {str(folder)!r}: {exc}") from exc
        try:
            model: Any = T5EncoderModel.from_pretrained(str(folder), dtype=dtype)
        except Exception as exc:
            raise GeneratorLoadError(f"cannot load the T5 encoder from {str(folder)!r}: {exc}") from exc
        model.to(device)
        model.eval().requires_grad_(False)
        width = int(model.config.d_model)
        if special is not None and special.dim != width:
            raise GeneratorLoadError(
                f"special tokens {special.source!r} are {special.dim}-dim but the T5 encoder outputs {width}"
            )
        identity = _model_identity(folder, weights, max_length, clean_text, dtype)
        return cls(
            tokenizer,
            model,
            special_tokens=special,
            max_length=max_length,
            clean_text=clean_text,
            identity=identity,
            cache_dir=cache_dir,
            memory_cache_size=memory_cache_size,
            batch_size=batch_size,
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def width(self) -> int:
        return int(self.model.config.d_model)

    # -------------------------------------------------------------------------- caching
    def _disk_path(self, prompt: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
        return self.cache_dir / self.identity[:24] / f"{key}.safetensors"

    def _remember(self, prompt: str, value: tuple[torch.Tensor, torch.Tensor]) -> None:
        if self.memory_cache_size <= 0:
            return
        self._memory[prompt] = value
        self._memory.move_to_end(prompt)
        while len(self._memory) > self.memory_cache_size:
            self._memory.popitem(last=False)

    def _lookup(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        hit = self._memory.get(prompt)
        if hit is not None:
            self._memory.move_to_end(prompt)
            self.stats.memory_hits += 1
            return hit
        path = self._disk_path(prompt)
        if path is not None and path.is_file():
            from safetensors import safe_open

            try:
                with safe_open(str(path), framework="pt", device="cpu") as fh:
                    meta = fh.metadata() or {}
                    if meta.get("prompt") != prompt or meta.get("identity") != self.identity:
                        return None
                    value = (fh.get_tensor("caption_emb"), fh.get_tensor("emb_mask"))
            except Exception:
                return None  # unreadable cache entry: recompute (and overwrite)
            self.stats.disk_hits += 1
            self._remember(prompt, value)
            return value
        return None

    def _store(self, prompt: str, value: tuple[torch.Tensor, torch.Tensor]) -> None:
        self._remember(prompt, value)
        path = self._disk_path(prompt)
        if path is None:
            return
        from safetensors.torch import save_file

        with atomic_path(path) as tmp:
            save_file(
                {"caption_emb": value[0].contiguous(), "emb_mask": value[1].contiguous()},
                str(tmp),
                metadata={"prompt": prompt, "identity": self.identity},
            )

    # -------------------------------------------------------------------------- encoding
    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        texts = [preprocess_prompt(p, self.clean_text) for p in prompts]
        out = self.tokenizer(
            texts,
            max_length=self.max_length,
            padding="max_length",
            truncation=True,
            return_attention_mask=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        return out["input_ids"], out["attention_mask"].to(torch.int64)

    @torch.no_grad()
    def _run_t5(self, prompts: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        ids, mask = self.tokenize(prompts)
        self.stats.encoder_calls += 1
        hidden = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
        hidden = hidden.float().cpu()
        return [(hidden[i].clone(), mask[i].clone()) for i in range(len(prompts))]

    def encode(
        self, prompts: str | Sequence[str], device: str | torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, L, C) float32 caption embeddings and (B, L) int64 masks, one row per prompt."""
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise ValueError("encode needs at least one prompt")
        for p in prompts:
            if not isinstance(p, str):
                raise TypeError(f"prompts must be str, got {type(p).__name__}")
        with self._lock:
            found: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
            todo: list[str] = []
            for p in prompts:
                if p in found or p in todo:
                    continue
                hit = self._lookup(p)
                if hit is None:
                    todo.append(p)
                else:
                    found[p] = hit
            for s in range(0, len(todo), self.batch_size):
                batch = todo[s : s + self.batch_size]
                for p, value in zip(batch, self._run_t5(batch)):
                    self.stats.encoded += 1
                    self._store(p, value)
                    found[p] = value
        dev = torch.device(device) if device is not None else self.device
        embs = torch.stack([found[p][0] for p in prompts])[:, None].to(dev)
        masks = torch.stack([found[p][1] for p in prompts]).to(dev)
        return embs, masks

    def encode_for_chunks(
        self,
        prompts: str | Sequence[str],
        num_chunks: int,
        options: SpecialTokenOptions = SpecialTokenOptions(),
        *,
        clean_chunks: int = 0,
        null_caption_embedding: torch.Tensor | None = None,
        device: str | torch.device | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        embs, masks = self.encode(prompts, device=device)
        return caption_rows(
            embs,
            masks,
            num_chunks,
            special_tokens=self.special_tokens,
            options=options,
            clean_chunks=clean_chunks,
            null_caption_embedding=null_caption_embedding,
        )

    def close(self) -> None:
        self.model = None
        self._memory.clear()


def missing_t5_files(path: Path) -> list[str]:
    """What a T5 folder (config, tokenizer, weights) lacks or has truncated; empty = complete."""
    folder = path / "t5-v1_1-xxl" if (path / "t5-v1_1-xxl").is_dir() else path
    if not folder.is_dir():
        return [f"{path} (T5 folder does not exist)"]
    out = [] if (folder / "config.json").is_file() else [f"{folder}/config.json"]
    if not any((folder / n).is_file() for n in ("tokenizer.json", "spiece.model")):
        out.append(f"{folder}/spiece.model (or tokenizer.json)")
    if not any(p.suffix in (".bin", ".safetensors") for p in folder.iterdir()):
        out.append(f"{folder}/<weights>")
    return out + truncated_in(folder)
