"""The house rules that keep the code navigable, checked statically: imports point one way
(library <- launchers <- commands), test support stays out of production code, every extension
point is one registry of ``spec.py`` files, and every YAML of a group selects a registered schema."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (top level or inside functions), relative imports resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
    return out


def modules_under(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offenders(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in paths
        for m in sorted(imported_modules(p))
        if any(m == f or m.startswith(f + ".") for f in forbidden)
    ]


def test_the_library_imports_neither_launchers_nor_commands():
    from pipeline.cli import MODULE_ALIASES

    aliases = {ROOT / (name.replace(".", "/") + ".py"): command for name, command in MODULE_ALIASES.items()}
    library = [
        p
        for p in modules_under("pipeline")
        if "cli" not in p.relative_to(ROOT).parts and p.name != "__main__.py" and p not in aliases
    ]
    assert offenders(library, ("launchers", "pipeline.cli")) == []
    for path, command in aliases.items():  # an alias imports its command and nothing else of ours
        assert imported_modules(path) - {"__future__", "sys"} == {
            f"pipeline.cli.{command}",
            f"pipeline.cli.{command}.main",
        }


def test_launchers_import_no_command():
    assert offenders(modules_under("launchers"), ("pipeline.cli",)) == []


def test_production_code_does_not_import_test_support():
    production = [
        p
        for p in [*modules_under("pipeline"), *modules_under("launchers")]
        if not {"cli", "tiny_models"} & set(p.relative_to(ROOT).parts)
    ]
    assert offenders(production, ("pipeline.tiny_models", "tests")) == []


def test_registries_find_every_entry_by_its_spec():
    from pipeline.config import EXTENSIONS

    found = {section: registry.names() for section, registry in EXTENSIONS.items()}
    assert found == {
        "benchmark": ["physicsiq"],
        "generator": ["cogvideox", "magi1", "wan_i2v"],
        "reward": ["ensemble", "geophys", "vjepa2_surprise"],
        "search": ["beam", "best_of_n", "guidance", "smc"],
    }
    for registry in EXTENSIONS.values():
        for name, spec in registry.specs.items():
            assert getattr(spec.config(), registry.key) == name  # the schema selects its own entry
            assert callable(registry.implementation(name))


@pytest.mark.parametrize("section", ["benchmark", "generator", "reward", "search"])
def test_every_group_yaml_selects_a_registered_schema(section):
    from pipeline.config import EXTENSIONS

    registry = EXTENSIONS[section]
    yamls = sorted((ROOT / "conf" / section).glob("*.yaml"))
    assert yamls
    for path in yamls:
        defaults = OmegaConf.load(path).get("defaults", [])
        schemas = [d for d in defaults if isinstance(d, str) and d.startswith("schema_")]
        assert len(schemas) == 1 and schemas[0].removeprefix("schema_") in registry.specs, (path, defaults)


def test_an_unknown_name_is_a_config_error_naming_the_choices():
    from pipeline.errors import ConfigError
    from pipeline.rewards import REWARDS

    with pytest.raises(
        ConfigError, match=r"reward.name='nope' is not one of \['ensemble', 'geophys', 'vjepa2_surprise'\]"
    ):
        REWARDS.implementation("nope")


def test_a_name_declared_twice_is_refused(tmp_path, monkeypatch):
    import sys

    from pipeline.registry import Registry

    for folder in ("one", "two"):
        (tmp_path / "ext" / folder).mkdir(parents=True)
        (tmp_path / "ext" / folder / "__init__.py").write_text("")
        (tmp_path / "ext" / folder / "spec.py").write_text(
            "from pipeline.registry import Spec\nSPEC = Spec('same', dict, 'builtins:dict')\n"
        )
    (tmp_path / "ext" / "__init__.py").write_text("")
    (tmp_path / "ext" / "shared").mkdir()  # a folder without a spec is shared code, not an entry
    (tmp_path / "ext" / "shared" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ext", raising=False)
    with pytest.raises(ValueError, match="'same' is declared twice"):
        Registry("ext", "thing").names()


CHECKS_WITHOUT_TORCH = """
import sys
from pipeline.config import to_config
from pipeline.errors import PipelineError
from pipeline.rewards import check_reward
from tests.conftest import compose

for overrides in {cases!r}:
    try:
        cfg = to_config(compose(overrides))
        if cfg.reward.name == "geophys":  # V-JEPA 2's checkpoint check reads its file with torch
            check_reward(cfg.reward)
    except PipelineError:
        pass
loaded = sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)
assert not loaded, loaded
"""


def test_config_checks_load_no_model_library():
    """The checks a command makes before any work (schemas, every engine's and reward's
    settings_problems, GeoPhys's check of its encoder folder) import neither torch nor diffusers
    nor transformers: a typo is reported in a second, not after seconds of imports."""
    import subprocess
    import sys

    cases = [
        [],
        ["reward=geophys_tiny"],
        ["reward=ensemble_tiny"],
        ["generator=cogvideox_tiny", "generator.adapter=/no/adapter"],
        ["generator=wan22_tiny", "generator.adapter=/no/adapter", "reward=geophys"],
        ["generator=cogvideox_tiny", "generator.num_frames=45", "reward=ensemble_tiny"],
    ]  # (MAGI-1's engine, the guidance strategy and V-JEPA 2's checkpoint check still import torch)
    done = subprocess.run(
        [sys.executable, "-c", CHECKS_WITHOUT_TORCH.format(cases=cases)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
