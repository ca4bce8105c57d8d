import json
import os
import shutil

from pipeline.generators.wan.engine import missing_checkpoint_files
from pipeline.tiny_models.tokenizer import build_local_tokenizer
from pipeline.tiny_models.wan import make_tiny_wan_i2v


def _size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def test_tiny_folder_complete_and_small(tiny_wan_path):
    assert missing_checkpoint_files(tiny_wan_path) == []
    index = json.loads((tiny_wan_path / "model_index.json").read_text())
    assert index["_class_name"] == "WanImageToVideoPipeline"
    assert _size(tiny_wan_path) < 5 * 2**20


def test_make_is_idempotent(tiny_wan_path):
    mi = tiny_wan_path / "model_index.json"
    before = mi.stat().st_mtime_ns
    assert make_tiny_wan_i2v(tiny_wan_path, seed=0) == tiny_wan_path
    assert mi.stat().st_mtime_ns == before


def test_make_rebuilds_incomplete_folder(tmp_path, tiny_wan_path):
    p = tmp_path / "ckpt"
    shutil.copytree(tiny_wan_path, p)
    shutil.rmtree(p / "vae")
    assert missing_checkpoint_files(p)
    make_tiny_wan_i2v(p, seed=0)
    assert missing_checkpoint_files(p) == []


def test_local_tokenizer_distinguishes_prompts():
    tok = build_local_tokenizer()
    a = tok("a red ball rolls left").input_ids
    b = tok("a blue cube falls down").input_ids
    c = tok("zzqx unseen wørds").input_ids  # out-of-corpus text still tokenizes (byte level)
    assert a != b
    assert a[-1] == b[-1] == c[-1] == tok.eos_token_id
    assert tok.unk_token_id not in c
    enc = tok(["short"], padding="max_length", max_length=16, return_attention_mask=True)
    assert len(enc.input_ids[0]) == 16 and enc.input_ids[0][-1] == tok.pad_token_id


def test_make_refuses_to_wipe_unrelated_dir(tmp_path):
    import pytest

    d = tmp_path / "precious"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        make_tiny_wan_i2v(d)
    assert (d / "notes.txt").read_text() == "keep me"
