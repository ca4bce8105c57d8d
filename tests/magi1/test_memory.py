"""The per-rank memory estimate of a MAGI-1 layout: its weights and KV cache are what a rank
holds (counted against real tiny models), and a layout that cannot fit the GPU is refused with
one message naming ``generator.parallel``."""

from __future__ import annotations

from pipeline.generators.magi1.config import preset
from pipeline.generators.magi1.dit import MagiDiT
from pipeline.generators.magi1.memory import chunks_of_video, main, rank_memory, tokens_per_chunk, weight_bytes
from pipeline.generators.magi1.parallelize import Layout

GB = 2**30


def test_weights_and_kv_cache_are_what_a_rank_holds():
    magi = preset("tiny")
    model = MagiDiT(magi.model_config)
    assert weight_bytes(magi.model_config, Layout(), 4) == sum(p.nbytes for p in model.parameters())
    est = rank_memory(magi, Layout(), 4, batch=2)
    cache = model.new_kv_cache(max_chunks=chunks_of_video(magi), tokens_per_chunk=tokens_per_chunk(magi), batch=2)
    cache.allocate(magi.model_config.num_query_groups)
    assert est.kv_cache == cache.nbytes() and est.host_kv_cache == 0
    # Ulysses over more ranks than KV groups keeps one (replicated) group per rank
    assert rank_memory(magi, Layout(sp=4), 4, batch=2).kv_cache == cache.nbytes() / 2


def test_the_24b_presets_layout_fits_a_node_and_one_gpu_alone_is_refused():
    magi = preset("24b").replace(runtime_config={"num_frames": 120})
    whole, shared = rank_memory(magi, Layout(), 2), rank_memory(magi, Layout(sp=4, tp=2), 2)
    assert shared.weights < whole.weights / 1.9 and shared.activations < whole.activations / 3
    assert shared.host_kv_cache and not shared.kv_cache  # the 24B preset offloads its KV cache
    assert shared.problem(Layout(sp=4, tp=2), 80 * GB) is None
    message = whole.problem(Layout(), 80 * GB)
    assert message and message.startswith("MAGI-1 with generator.parallel cfg=1,sp=1,tp=1 needs an estimated")
    assert "the GPU has 80 GB" in message and "\n" not in message


def test_the_table_lists_every_layout_that_splits_the_model(capsys):
    assert main(["24b"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert "cfg=1,sp=4,tp=2" in rows and "cfg=1,sp=8,tp=1" in rows
    assert "cfg=3,sp=1,tp=2" in rows and not any(r.startswith("cfg=3,sp=4") for r in rows)  # 12 > 8 GPUs
