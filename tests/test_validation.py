"""Every config value with a domain is checked before any work: one bad value per case, one line
naming its key, no run folder item written. The table covers every field that declares a check
(the last test fails when a new checked field has no case here)."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.cli.run import run
from pipeline.config import Config
from pipeline.errors import PipelineError
from tests.conftest import compose

RES = "cluster.resources.sample"
MAGI = ["generator=magi1_tiny"]  # + the tiny MAGI-1 checkpoint paths (fixture)

# (overrides, the key the message must name)
CASES = [
    (["search.n=0"], "search.n"),
    (["search.n=-1"], "search.n"),
    (["search.base_seed=-1"], "search.base_seed"),
    (["search.name=tree"], "search.name"),
    (["search.budget_nfe=0"], "search.budget_nfe"),
    (["search.budget_nfe=7"], "search.budget_nfe"),  # the demo: 2 candidates x 4 steps = 8 NFEs an item
    ([*MAGI, "search=smc", "search.particles=2", "search.budget_nfe=53"], "search.budget_nfe"),  # 2 x 27
    (["search.name=beam"], "search"),  # the name of another strategy, without its schema (search=beam)
    (["search=beam"], "search.name"),  # Wan makes a video in one piece: nothing to search at chunk boundaries
    ([*MAGI, "search=beam", "reward.max_frames=49"], "reward.max_frames"),  # the video so far
    ([*MAGI, "search=beam", "search.beams=0"], "search.beams"),
    ([*MAGI, "search=beam", "search.children=0"], "search.children"),
    ([*MAGI, "search=smc", "search.particles=0"], "search.particles"),
    ([*MAGI, "search=smc", "search.beta=-1"], "search.beta"),
    ([*MAGI, "search=smc", "search.ess_threshold=1.5"], "search.ess_threshold"),
    ([*MAGI, "search=smc", "search.potential=min"], "search.potential"),
    ([*MAGI, "search=smc", "search.resampling=stratified"], "search.resampling"),
    ([*MAGI, "search=smc", "search.base_seed=-2"], "search.base_seed"),
    ([*MAGI, "search=guidance", "search.scale=-0.1"], "search.scale"),
    ([*MAGI, "search=guidance", "search.frequency=0"], "search.frequency"),
    ([*MAGI, "search=guidance", "search.start=1.5"], "search.start"),
    ([*MAGI, "search=guidance", "search.end=-1"], "search.end"),
    ([*MAGI, "search=guidance", "search.start=0.5", "search.end=0.5"], "search.start"),  # nothing guided
    ([*MAGI, "search=guidance", "search.pattern=1y4"], "search.pattern"),
    ([*MAGI, "search=guidance", "search.pattern='0x5,1x45'"], "search.pattern"),  # the tiny MAGI-1 has 4 steps
    ([*MAGI, "search=guidance", "search.pattern=0x4"], "search.start"),  # no update anywhere
    ([*MAGI, "search=guidance", "search.chunks=all"], "search.chunks"),
    ([*MAGI, "search=guidance", "search.gradient=none"], "search.gradient"),
    (["search=guidance", "search.gradient=model"], "search.gradient"),  # Wan: through the clean estimate only
    ([*MAGI, "search=guidance", "search.decode_scale=0"], "search.decode_scale"),
    ([*MAGI, "search=guidance", "search.context_frames=-1"], "search.context_frames"),
    (["reward.window_size=1"], "reward.window_size"),
    (["reward.context_frames=0"], "reward.context_frames"),
    (["reward.stride=0"], "reward.stride"),
    (["reward.max_frames=0"], "reward.max_frames"),
    (["reward.batch_windows=0"], "reward.batch_windows"),
    (["reward.variant=vitz"], "reward.variant"),
    (["reward.weights=ema"], "reward.weights"),
    (["reward.aggregate=median"], "reward.aggregate"),
    (["reward.dtype=fp8"], "reward.dtype"),
    (["reward.device=gpu"], "reward.device"),
    (["reward.name=clip_score"], "reward.name"),
    (["reward.context_frames=16"], "reward.context_frames"),  # window > context
    (["reward.max_frames=8"], "reward.max_frames"),  # at least one window
    (["reward.context_frames=3"], "reward.context_frames"),  # a whole number of tubelets
    (["reward.window_size=15"], "reward.window_size"),  # a whole number of tubelets
    (["reward.window_size=64", "reward.context_frames=8"], "reward.window_size"),  # longer than a video
    (["reward=geophys_tiny", "reward.pooling=max"], "reward.pooling"),
    (["reward=geophys_tiny", "reward.image_size=0"], "reward.image_size"),
    (["reward=geophys_tiny", "reward.max_frames=3"], "reward.max_frames"),
    (["reward=geophys_tiny", "reward.batch_frames=0"], "reward.batch_frames"),
    (["reward=geophys_tiny", "search=guidance"], "reward.name"),  # a rank has no gradient
    (["reward=ensemble_tiny", "search=guidance"], "reward.name"),
    (["reward=ensemble_tiny", "reward.members=[{name: geophys}]"], "reward.members"),  # one is no ensemble
    (["reward=ensemble_tiny", "reward.members=[{name: geophys, layer: x}, {name: geophys}]"], "reward.members[0]"),
    (
        [
            *MAGI,
            "search=beam",
            "reward=ensemble_tiny",
            "reward.members=[{name: geophys, max_frames: 8}, {name: geophys}]",
        ],
        "reward.members[0].max_frames",
    ),  # the video so far
    (["generator.kind=foo"], "generator.kind"),
    (["generator.width=0"], "generator.width"),
    (["generator.height=-16"], "generator.height"),
    (["generator.width=72"], "generator.width"),  # Wan: multiples of 16
    (["generator.num_frames=0"], "generator.num_frames"),
    (["generator.num_frames=40"], "generator.num_frames"),  # Wan: 4k+1
    (["generator.num_frames=37"], "generator.num_frames"),  # fewer than the contract's 5 s
    (["generator.fps=0"], "generator.fps"),
    (["generator.fps=7.5"], "generator.fps"),  # 5 s is not a whole number of frames
    (["generator.batch_size=0"], "generator.batch_size"),
    (["generator.device=gpu"], "generator.device"),
    (["generator.dtype=fp8"], "generator.dtype"),
    (["generator.steps=0"], "generator.steps"),
    (["generator.guidance_scale=-1"], "generator.guidance_scale"),
    (["generator.guidance_scale_2=-1"], "generator.guidance_scale_2"),
    (["generator.guidance_scale_2=2"], "generator.guidance_scale_2"),  # the tiny Wan 2.1 has one expert
    (["generator.adapter=/no/such/adapter"], "generator.adapter"),
    ([*MAGI, "generator.variant=huge"], "generator.variant"),
    ([*MAGI, "generator.steps=6"], "generator.steps"),  # multiples of the sampler window
    ([*MAGI, "generator.steps=0"], "generator.steps"),
    ([*MAGI, "generator.text_scale=-1"], "generator.text_scale"),
    ([*MAGI, "generator.history_scale=-1"], "generator.history_scale"),
    ([*MAGI, "generator.fps=23.5"], "generator.fps"),
    ([*MAGI, "generator.num_frames=48"], "generator.num_frames"),  # 72 frames out: under 5 s at 24 fps
    ([*MAGI, "generator.dtype=int8"], "generator.dtype"),
    (["benchmark.max_scenarios=0"], "benchmark.max_scenarios"),
    (["benchmark.mode=t2v"], "benchmark.mode"),
    (["benchmark.board=leaderboard"], "benchmark.board"),
    (["benchmark.fps=-1"], "benchmark.fps"),
    (["benchmark.name=vbench"], "benchmark.name"),
    (["prepare.resize=squash"], "prepare.resize"),
    (["evaluate.workers=0"], "evaluate.workers"),
    (["stages=[prepare,smaple]"], "stages"),
    (["cluster.name=k8s"], "cluster.name"),
    (["cluster.workers=0"], "cluster.workers"),
    (["cluster.array_parallelism=0"], "cluster.array_parallelism"),
    (["cluster.max_attempts=0"], "cluster.max_attempts"),
    (["cluster.signal_delay_s=-1"], "cluster.signal_delay_s"),
    (["cluster=slurm_local", f"{RES}.timeout_min=1", "cluster.signal_delay_s=60"], "cluster.signal_delay_s"),
    (["cluster.max_requeues=-1"], "cluster.max_requeues"),
    ([f"{RES}.nodes=0"], f"{RES}.nodes"),
    ([f"{RES}.tasks_per_node=0"], f"{RES}.tasks_per_node"),
    ([f"{RES}.gpus_per_node=-1"], f"{RES}.gpus_per_node"),
    ([f"{RES}.gpus_per_node=8"], f"{RES}.tasks_per_node"),  # one rank per GPU
    ([f"{RES}.cpus_per_task=0"], f"{RES}.cpus_per_task"),
    ([f"{RES}.mem_gb=0"], f"{RES}.mem_gb"),
    ([f"{RES}.timeout_min=0"], f"{RES}.timeout_min"),
    ([*MAGI, "generator.parallel.tp=0"], "generator.parallel.tp"),
    ([*MAGI, "cluster=slurm_local", f"{RES}.tasks_per_node=3", "generator.parallel.sp=2"], f"{RES}.tasks_per_node"),
    ([*MAGI, f"{RES}.tasks_per_node=3", "generator.parallel.tp=3"], "generator.parallel.tp"),  # 4 heads
    ([*MAGI, f"{RES}.tasks_per_node=8", "generator.parallel.sp=8"], "generator.parallel.sp"),  # 4 heads
    ([*MAGI, f"{RES}.tasks_per_node=4", "generator.parallel.cfg=4"], "generator.parallel.cfg"),  # 3 passes
    ([f"{RES}.max_shards=0"], f"{RES}.max_shards"),
    (["tracking.wandb.mode=loud"], "tracking.wandb.mode"),
]


@pytest.fixture
def overrides(demo_overrides, tiny_models):
    magi = tiny_models["magi1"]
    return demo_overrides, [
        f"generator.checkpoint={magi / 'dit'}",
        f"generator.vae_checkpoint={magi / 'vae'}",
        f"generator.t5_checkpoint={magi / 't5'}",
        f"generator.special_tokens={magi / 'special_tokens.npz'}",
    ]


@pytest.mark.parametrize("bad, key", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_value_is_one_line_naming_the_key_before_any_work(overrides, tmp_path, bad, key):
    base, magi_paths = overrides
    extra = magi_paths if bad[:1] == MAGI else []
    if any(b.startswith("search=") for b in bad):  # the demo experiment sets best-of-N's search.n
        base = [b for b in base if not b.startswith("+experiment=")]
    if any(b.startswith("reward=") for b in bad):  # another reward: the tiny V-JEPA 2 path is not its
        base = [b for b in base if not b.startswith("reward.checkpoint=")]
    with pytest.raises(PipelineError) as err:
        run(compose([*base, *extra, *bad]))
    message = str(err.value)
    assert len(message.splitlines()) == 1, message
    assert f"{key}=" in message or f"{key} " in message or f"{key}:" in message, message
    assert not list((tmp_path / "runs").glob("**/items/*.json")), "work started before the check"


def test_every_checked_field_has_a_case():
    def checked(cls, prefix):
        for f in dataclasses.fields(cls):
            if f.metadata.get("check") is not None:
                yield prefix + f.name
            if dataclasses.is_dataclass(f.type if isinstance(f.type, type) else None):
                yield from checked(f.type, prefix + f.name + ".")

    import pipeline.config as c

    keys = set()
    extensions = [(spec.config, f"{section}.") for section, r in c.EXTENSIONS.items() for spec in r.specs.values()]
    for cls, prefix in [
        *extensions,
        (c.StageResources, f"{RES}."),
        (c.ClusterConfig, "cluster."),
        (c.WandbConfig, "tracking.wandb."),
        (c.PrepareConfig, "prepare."),
        (c.EvaluateConfig, "evaluate."),
        (Config, ""),
    ]:
        keys |= set(checked(cls, prefix))
    covered = {key for _, key in CASES}
    assert keys - covered == set(), f"checked fields without a bad-value case: {sorted(keys - covered)}"


@pytest.mark.parametrize("generator", ["magi1_24b", "magi1_24b_distill"])
def test_the_24b_presets_spread_one_copy_over_a_slurm_node(generator):
    """The 24B presets state an 8-rank layout: it fits cluster=slurm's sample job (8 ranks per
    node) unchanged, and a node of 6 ranks is refused in one line before any work."""
    from pipeline.config import replica_size, to_config

    paths = [f"generator.{k}=/ckpt/{k}" for k in ("checkpoint", "vae_checkpoint", "t5_checkpoint")]
    cfg = to_config(compose([f"generator={generator}", *paths, "cluster=slurm"]))
    assert replica_size(cfg, "sample") == 8 and replica_size(cfg, "score") == 1
    six = [f"{RES}.tasks_per_node=6", f"{RES}.gpus_per_node=6"]
    with pytest.raises(PipelineError) as err:
        to_config(compose([f"generator={generator}", *paths, "cluster=slurm", *six]))
    assert str(err.value).count("\n") == 0 and f"{RES}.tasks_per_node=6" in str(err.value)
    assert "model copies of 8 ranks (generator.parallel sp=4 x tp=2)" in str(err.value)
