import dataclasses

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from pipeline.config import Config, to_config
from pipeline.errors import ConfigError
from pipeline.generators.wan.spec import WanI2VGeneratorConfig as WanI2VConfig
from pipeline.store import run_key
from tests.conftest import compose


def test_default_composes_to_typed_config():
    cfg = to_config(compose(["+experiment=demo"]))
    assert isinstance(cfg, Config)
    assert isinstance(cfg.generator, WanI2VConfig)
    assert cfg.name == "demo" and cfg.search.n == 2


@pytest.mark.parametrize("override", ["search.nn=3", "generator.stepz=2", "reward.windowsize=8"])
def test_unknown_key_fails_naming_it(override):
    with pytest.raises(ConfigCompositionException) as err:
        compose([override])
    key = override.split("=")[0].split(".")[-1]
    assert key in str(err.value) + str(err.value.__cause__)


def test_missing_required_value_names_the_key():
    with pytest.raises(ConfigError, match="benchmark.root"):
        to_config(compose(["benchmark=physicsiq"]))


def test_invalid_choice_is_rejected():
    with pytest.raises(ConfigError, match="reward.aggregate"):
        to_config(compose(["reward.aggregate=median"]))
    with pytest.raises(ConfigError, match=r"stages=\[.smaple.\] is not one of"):
        to_config(compose(["stages=[prepare,smaple]"]))


def test_run_key_ignores_operational_fields_only():
    base = run_key(to_config(compose([])))
    for same in [
        "generator.device=cuda",
        "generator.batch_size=8",
        "reward.batch_windows=1",
        "tracking=online",
        "run_root=/elsewhere",
        "evaluate.workers=8",
        "report.plots=false",
    ]:
        assert run_key(to_config(compose([same]))) == base, same
    for different in [
        "search.n=3",
        "reward.stride=8",
        "generator.steps=5",
        "prepare.resize=stretch",
        "conform.drop_first_frame=false",
        "search.base_seed=1",
        "reward.max_frames=49",
    ]:
        assert run_key(to_config(compose([different]))) != base, different


def test_run_keys_outlive_refactors():
    """Run folders made by earlier versions keep their key, so ``resume`` and a rerun find them:
    this is the demo's key since the registries landed. A change here invalidates every run folder
    users have; make it only when results change, and say so."""
    demo = ["+experiment=demo", "benchmark.root=data/physicsiq-synthetic"]
    demo += ["generator.checkpoint=checkpoints/tiny/wan_i2v", "reward.checkpoint=checkpoints/tiny/vjepa2"]
    assert run_key(to_config(compose(demo))) == "643dba75016d"


def test_every_schema_field_has_a_default_or_is_required():
    # A field with neither would make composition fail with an unhelpful message.
    for cls in (Config, WanI2VConfig):
        for f in dataclasses.fields(cls):
            assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def test_cfg_job_prints_the_config(capsys):
    cfg = compose(["+experiment=demo", "search.n=3"])
    text = OmegaConf.to_yaml(cfg)
    assert "name: demo" in text and "'n': 3" in text


def test_every_schema_field_is_named_in_code():
    """No dead flags, statically: each field of every config schema (also of generators the demo
    does not run) is read as an attribute somewhere outside the schema modules."""
    import ast
    from pathlib import Path

    from pipeline.config import EXTENSIONS

    root = Path(__file__).resolve().parent.parent
    read: set[str] = set()
    for path in [*root.joinpath("pipeline").rglob("*.py"), *root.joinpath("launchers").rglob("*.py")]:
        if path.name in ("config.py", "fields.py") and path.parent.name == "pipeline":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                read.add(node.attr)
    unread = [
        f"{cls.__name__}.{f.name}"
        for cls in (spec.config for registry in EXTENSIONS.values() for spec in registry.specs.values())
        for f in dataclasses.fields(cls)
        if f.name not in read
    ]
    assert not unread, f"config fields of generators, rewards, benchmarks, strategies no code reads: {unread}"


def test_a_budget_the_settings_meet_passes():
    demo = ["+experiment=demo"]
    assert to_config(compose([*demo, "search.budget_nfe=8"])).search.budget_nfe == 8  # 2 candidates x 4 steps
    base = run_key(to_config(compose(demo)))
    assert run_key(to_config(compose([*demo, "search.budget_nfe=8"]))) == base  # a limit, not a result
