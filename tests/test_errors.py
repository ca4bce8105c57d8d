"""Errors as a user sees them: every command ends a known failure with one line ``error: ...``
and exit status 2, and a bug with its traceback and status 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def command(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", name, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def run_dir(demo_overrides):
    """A finished prepare-only run to point resume and status at."""
    res = command("run", *demo_overrides, "benchmark.max_scenarios=1", "stages=[prepare]")
    assert res.returncode == 0, res.stderr[-2000:]
    return next(Path(next(a for a in demo_overrides if a.startswith("run_root=")).split("=", 1)[1]).glob("demo/*"))


def known_failures(tmp, demo, run_dir, videos):
    """(command, args, what the line must say), one per known failure."""
    return [
        ("run", ["+experiment=demo", "search.nn=4"], "Key 'nn' not in 'BestOfNConfig'"),
        ("run", ["+experiment=demo", "generator=nope"], "Could not find 'generator/nope'"),
        ("run", ["+experiment=demo", "search.n=abc"], "search.n=abc"),
        ("run", ["benchmark=physicsiq"], "missing required config value(s): benchmark.root"),
        ("run", [*demo, "search.n=0"], "search.n=0 must be >= 1"),
        ("run", [*demo, f"benchmark.root={tmp / 'nope'}"], "Physics-IQ dataset folder does not exist"),
        ("run", [*demo, f"generator.checkpoint={tmp / 'nope'}"], "generator.checkpoint="),
        ("resume", [], "usage: python -m pipeline resume"),
        ("resume", [f"run={tmp}"], "not a run folder"),
        ("resume", [f"run={run_dir}", "search.n=9"], "change the run key"),
        ("resume", [f"run={run_dir}", "cluster.nope=1"], "cluster.nope"),
        ("resume", [f"run={run_dir}", "cluster.workers=0"], "cluster.workers=0 must be >= 1"),
        ("status", [], "usage: python -m pipeline status"),
        ("status", [f"run={tmp}"], "not a run folder"),
        ("status", [f"rn={tmp}"], "Key 'rn' not in 'StatusCommand'"),
        ("tiny-models", ["outt=x"], "Key 'outt' not in 'TinyModelsCommand'"),
        ("synthetic-data", [f"out={tmp / 's'}", "scenarios=0"], "scenarios=0 must be >= 1"),
        ("score-videos", [f"videos={videos}"], "reward.checkpoint"),
        ("score-videos", ["reward.windowsize=8", f"videos={videos}"], "windowsize"),
        ("score-videos", [], "missing required value(s): videos"),
        ("score-videos", [f"videos={videos}", "reward.stride=0"], "reward.stride=0 must be >= 1"),
        ("evaluate-folder", ["generated=x"], "missing required value(s): benchmark.root, output"),
        ("evaluate-folder", ["benchmark.rooot=x", "generated=x", "output=y"], "Key 'rooot' not in"),
        ("evaluate-folder", [f"benchmark.root={tmp}", f"generated={tmp / 'none'}", f"output={tmp / 'o'}"], ""),
        (
            "evaluate-folder",
            ["benchmark.root=x", "generated=x", "output=y", "evaluate.workers=0"],
            "evaluate.workers=0 must be >= 1",
        ),
    ]


def test_every_known_failure_is_one_line_and_status_2(demo_overrides, run_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("VJEPA_CHECKPOINT_DIR", raising=False)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"")
    demo = [a for a in demo_overrides if not a.startswith("run_root=")] + [f"run_root={tmp_path / 'other'}"]
    for module, args, says in known_failures(tmp_path, demo, run_dir, videos):
        res = command(module, *args)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2, (module, args, res.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], (module, args, lines)
        assert "HYDRA_FULL_ERROR" not in res.stderr


BUGS = {  # a function of each command's body, where a bug is planted
    "run": ("run", ["+experiment=demo"]),
    "resume": ("resume", ["run=x"]),
    "status": ("render", ["run=x"]),
    "score-videos": ("score_videos", ["videos=x"]),
    "evaluate-folder": ("evaluate", ["benchmark.root=x", "generated=x", "output=y"]),
}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_a_bug_keeps_its_traceback_and_status_1(name):
    from pipeline.cli import COMMANDS

    function, args = BUGS[name]
    code = (
        f"import sys, pipeline.cli.{COMMANDS[name][0]} as m\n"
        f"from pipeline.__main__ import main\n"
        f"def broken(*a, **k):\n    return 1 / 0\n"
        f"m.{function} = broken\n"
        f"sys.exit(main([{name!r}, *{args!r}]))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" in res.stderr and "ZeroDivisionError" in res.stderr
    assert "error: " not in res.stderr.splitlines()[-1]


def test_every_command_answers_help_and_an_unknown_command_is_named():
    from pipeline.cli import COMMANDS

    for name in COMMANDS:
        res = command(name, "--help")
        assert res.returncode == 0 and "python -m pipeline " + name in res.stdout, (name, res.stdout[:300])
    for module in ("pipeline.run", "pipeline.resume", "pipeline.status", "pipeline.tiny_models"):
        res = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0 and "python -m pipeline" in res.stdout, (module, res.stderr[-500:])
    res = command("scroe")
    assert res.returncode == 2 and "unknown command 'scroe'" in res.stderr and "score-videos" in res.stderr


def test_slurm_without_its_commands_is_a_known_failure(demo_overrides, monkeypatch):
    import launchers.slurm as slurm
    from pipeline.cli.run import run
    from pipeline.errors import PipelineError
    from tests.conftest import compose

    monkeypatch.setattr(slurm.shutil, "which", lambda cmd: None)
    with pytest.raises(PipelineError, match=r"cluster.name=slurm: sbatch, scancel, srun not found on this machine"):
        run(compose([*demo_overrides, "cluster=slurm_local", "benchmark.max_scenarios=1"]))


def test_unwritable_run_root_is_a_known_failure(demo_overrides, tmp_path):
    from pipeline.cli.run import run
    from pipeline.errors import PipelineError
    from tests.conftest import compose

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PipelineError, match="cannot make the run folder"):
        run(compose([*demo_overrides, f"run_root={blocker}"]))
