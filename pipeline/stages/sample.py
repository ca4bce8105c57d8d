"""sample: the candidates of every item, as the search strategy (``search.name``) makes them.

Best-of-N: independent candidates from seeds base_seed + k, checked one by one: a rerun
regenerates only the ones whose video is missing or does not decode with the frame count recorded
when it was made (engines differ in what they return for a condition: MAGI-1 i2v returns whole
chunks), and batches them per prompt. Strategies with the reward inside sampling (guidance, beam, SMC) drive
a generation session with the reward loaded here and write their final candidates, with each
one's starting seed, the surprises the loop measured and a trace of every decision; such an item
is made whole or redone whole. Score and select then treat every strategy's candidates alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.compute import measured
from pipeline.conditions import load_condition
from pipeline.fields import result_fields
from pipeline.files import json_digest
from pipeline.search import STRATEGIES, candidate_seeds
from pipeline.stage_cache import CandidatePool, link_or_copy
from pipeline.stages.base import Output, Stage
from pipeline.store import Record
from pipeline.video_io import check_video, probe_video, write_video

if TYPE_CHECKING:
    from pipeline.benchmarks.base import BenchmarkConfig
    from pipeline.generators.base import GeneratorConfig
    from pipeline.rewards.base import RewardConfig
    from pipeline.search.base import SearchConfig


COUNTERS = ("nfe", "vae_decodes")  # per candidate, kept with a pooled candidate


def charge(compute: dict, accounts: list[dict]) -> dict:
    """``compute`` plus what the candidates this attempt did not make cost when they were made:
    a run's NFEs are its N candidates', whichever attempt or run made them."""
    out = dict(compute)
    for account in accounts:
        for name in COUNTERS:
            total = round(out[name] + account.get(name, 0), 3)
            out[name] = int(total) if float(total).is_integer() else total
    return out


@dataclass(frozen=True)
class SampleSections:
    """The config sections sample reads."""

    generator: GeneratorConfig
    search: SearchConfig
    benchmark: BenchmarkConfig
    reward: RewardConfig  # read only by strategies that score inside sampling


class Sample(Stage[SampleSections]):
    name = "sample"
    sections = SampleSections
    upstream = ("prepare",)

    @property
    def strategy(self):
        return STRATEGIES.of(self.cfg.search)

    @classmethod
    def key_fields(cls, sections: SampleSections) -> dict:
        """The reward shapes candidates only when a strategy scores inside sampling: a best-of-N
        run with another reward shares this stage's work."""
        fields = result_fields(sections)
        if not STRATEGIES.of(sections.search).in_loop:
            fields.pop("reward")
        return fields

    def pool_video(self, item_id: str, seed: int) -> Path | None:
        """Where the independent candidate of ``seed`` from this item's condition is pooled: by
        the generator's settings (and benchmark mode) and the condition's digest, not by N
        (None while the item has no condition)."""
        prep = self.store.read("prepare", item_id)
        if prep is None or not prep.done:
            return None
        return CandidatePool(self.store.cache).path(self._pool_key, prep.digest, seed)

    @cached_property
    def _pool_key(self) -> str:
        """The generator's result fields and the benchmark mode: what a candidate of a seed is made by."""
        generator = result_fields(self.cfg.generator)
        return json_digest({"generator": generator, "mode": self.cfg.benchmark.mode})[:16]

    def _pooled(self, item_id: str, seed: int, verify: bool = True) -> dict | None:
        """The sidecar (frames, what making it cost) of the pooled candidate of ``seed``, if the
        pool holds a sound one (``verify=False``: if it holds one at all, unhashed, for planning)."""
        video = self.pool_video(item_id, seed)
        if video is not None and not verify:
            return CandidatePool.sidecar(video)
        meta = None if video is None else CandidatePool.lookup(video)
        if meta is None or meta.get("fps") != self.cfg.generator.fps or not self._valid(video, meta.get("frames")):
            return None
        return meta

    def preflight(self) -> None:
        from pipeline.errors import StageError
        from pipeline.generators import missing_checkpoint_files_for

        if self.strategy.in_loop:
            from pipeline.rewards import check_reward

            check_reward(self.cfg.reward)

        missing = missing_checkpoint_files_for(self.cfg.generator)
        if missing:
            raise StageError(
                f"generator.checkpoint={self.cfg.generator.checkpoint}: not a complete "
                f"{self.cfg.generator.kind} checkpoint, missing: {', '.join(missing[:8])}"
            )

    def setup(self) -> None:
        from pipeline.devices import resolve_device
        from pipeline.generators import generator_from_config

        g = self.cfg.generator
        self.generator = generator_from_config(g, device=resolve_device(g.device), mesh=self.mesh)
        self.generated = 0  # candidates made by this process (tests and summaries read it)
        self.scorer = None
        if self.strategy.in_loop:
            from pipeline.rewards import build_scorer

            self.scorer = build_scorer(self.cfg.reward)

    def close(self) -> None:
        if hasattr(self, "generator"):
            del self.generator  # release the models
            self.scorer = None

    def candidate_path(self, item_id: str, k: int, seed: int):
        return self.store.outputs_dir(self.name) / item_id / f"cand{k:02d}_seed{seed}.mp4"

    def _valid(self, path, num_frames: int | None) -> bool:
        try:
            check_video(path, num_frames=num_frames, fps=self.cfg.generator.fps)
            return True
        except Exception:
            return False

    def cost(self, item_id: str) -> float:
        """Frames still to generate: candidates missing or invalid times frames per candidate
        (what the engine makes, which may be more than ``generator.num_frames`` asks)."""
        from pipeline.generators import generator_class

        g = self.cfg.generator
        frames = generator_class(g.kind).planned_frames(g, self.cfg.benchmark.mode) or g.num_frames
        if self.strategy.in_loop:  # made whole: every candidate
            return float(self.strategy.num_candidates(self.cfg.search) * frames)
        return float(len(self._todo(item_id, verify_pool=False)[0]) * frames)

    def _request(self, item_id: str):
        """The item's prompt and condition (image or v2v clip) as a request (seed set per candidate)."""
        from pipeline.generators.base import GenerationRequest

        item = self.manifest.get(item_id)
        prep = self.store.require("prepare", item_id)
        condition = load_condition(self.store.path(prep.outputs["condition"]), self.generator)
        return GenerationRequest(prompt=item.prompt, condition=condition, seed=0)

    def _todo(
        self, item_id: str, verify_pool: bool = True
    ) -> tuple[list[tuple[int, int]], dict[int, int], dict[int, dict]]:
        """Best-of-N candidates (k, seed) to generate, the recorded frame counts of the ones
        this stage holds, and the pool's sidecars of the ones to take from the pool."""
        from pipeline.runner import upstream_digests

        seeds = candidate_seeds(self.cfg.search)
        previous = self.store.read(self.name, item_id)
        # Files left by an attempt that crashed before its record came from this run's condition;
        # a record built from another condition means every file on disk is stale.
        stale = previous is not None and previous.inputs != upstream_digests(self, item_id)
        known = {} if stale else self._recorded_frames(item_id)
        todo, pooled = [], {}
        for k, s in enumerate(seeds):
            if not stale and self._valid(self.candidate_path(item_id, k, s), known.get(k)):
                continue
            meta = self._pooled(item_id, s, verify=verify_pool)
            if meta is None:
                todo.append((k, s))
            else:
                pooled[k] = meta
        return todo, known, pooled

    def _batches(self, request, todo: list[tuple[int, int]]):
        """(candidates, their videos, what making them cost per candidate) batch by batch."""
        g = self.generator
        batch = max(1, self.cfg.generator.batch_size)
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            before = {name: getattr(g, name) for name in COUNTERS}
            videos = g.generate([replace(request, seed=s) for _, s in chunk])
            yield chunk, videos, {name: (getattr(g, name) - before[name]) / len(chunk) for name in COUNTERS}

    def _agreed(self, todo: list[tuple[int, int]] | None) -> list[tuple[int, int]]:
        """The leader's list of candidates to generate, on every rank of a multi-rank replica:
        what a rank finds on disk can differ (another run may pool a candidate between two
        reads), and ranks that generate different candidates never meet in the collectives."""
        if self.mesh is None:
            assert todo is not None
            return todo
        import torch.distributed as dist

        from pipeline.distributed import replica_group

        group, ranks = replica_group(self.mesh)
        if len(ranks) == 1:
            assert todo is not None
            return todo
        box: list = [todo]
        dist.broadcast_object_list(box, src=ranks[0], group=group)
        return [(int(k), int(s)) for k, s in box[0]]

    def follow(self, item_id: str) -> None:
        """A non-leader rank of a replica whose ranks share the model: the leader's generations
        again (the leader's list of candidates), nothing written."""
        request = self._request(item_id)
        if self.strategy.in_loop:
            self.strategy.run(self.cfg.search, self.generator, request, self.scorer)
            return
        for _ in self._batches(request, self._agreed(None)):
            pass

    def run(self, item_id: str) -> Output:
        request = self._request(item_id)
        if self.strategy.in_loop:
            return self._search(item_id, request)
        seeds = candidate_seeds(self.cfg.search)
        todo, known, pooled = self._todo(item_id)
        todo = self._agreed(todo)
        for k, meta in pooled.items():  # made before, for another N or by another run
            video = self.pool_video(item_id, seeds[k])
            assert video is not None  # _todo found it
            link_or_copy(video, self.candidate_path(item_id, k, seeds[k]))
            known[k] = int(meta["frames"])
        charged = [meta.get("compute", {}) for meta in pooled.values()]
        held = [k for k in range(len(seeds)) if k not in pooled and k not in dict(todo)]
        charged += [self._held_cost(item_id, k, seeds[k]) for k in held]
        g, fps = self.generator, self.cfg.generator.fps
        with measured({"nfe": lambda: g.nfe, "vae_decodes": lambda: g.vae_decodes}) as compute:
            for chunk, videos, share in self._batches(request, todo):
                for (k, s), frames in zip(chunk, videos):
                    write_video(self.candidate_path(item_id, k, s), frames, fps)
                    known[k] = len(frames)
                    self.generated += 1
                    # pooled as made: a crash later in the item keeps it, with what it cost
                    self._pool(item_id, k, s, known[k], share)
        for k, s in enumerate(seeds):  # reused files: their frame count as they are
            if k not in known:
                known[k] = probe_video(self.candidate_path(item_id, k, s)).num_frames
        outputs = {f"cand{k:02d}": self.store.rel(self.candidate_path(item_id, k, s)) for k, s in enumerate(seeds)}
        return Output(
            outputs=outputs,
            data={
                "seeds": seeds,
                "frames": [known[k] for k in range(len(seeds))],
                "fps": self.cfg.generator.fps,
                "compute": charge({**compute, "candidates_made": len(todo), "candidates_pooled": len(pooled)}, charged),
            },
        )

    def _pool(self, item_id: str, k: int, seed: int, frames: int, compute: dict) -> None:
        video = self.pool_video(item_id, seed)
        if video is not None:
            meta = {"frames": frames, "fps": self.cfg.generator.fps, "seed": seed, "compute": compute}
            CandidatePool.put(video, self.candidate_path(item_id, k, seed), meta)

    def _held_cost(self, item_id: str, k: int, seed: int) -> dict:
        """What a candidate this stage already holds cost when it was made: its pooled sidecar's
        account when the pool holds this very file (an attempt that crashed after making it)."""
        video = self.pool_video(item_id, seed)
        meta = None if video is None else CandidatePool.sidecar(video)
        path = self.candidate_path(item_id, k, seed)
        if video is None or meta is None or not video.exists() or not os.path.samefile(video, path):
            return {}
        return meta.get("compute", {})

    def _search(self, item_id: str, request) -> Output:
        """A strategy with the reward inside sampling: its final candidates, all made now."""
        g, scorer = self.generator, self.scorer
        assert scorer is not None  # setup loads it for every in-loop strategy
        counters = {
            "nfe": lambda: g.nfe,
            "vae_decodes": lambda: g.vae_decodes,
            "reward_forwards": lambda: scorer.forwards,
            "reward_backwards": lambda: scorer.backwards,
        }
        with measured(counters) as compute:
            found = self.strategy.run(self.cfg.search, g, request, scorer)
        outputs = {}
        for k, (seed, frames) in enumerate(zip(found.seeds, found.videos)):
            path = write_video(self.candidate_path(item_id, k, seed), frames, self.cfg.generator.fps)
            outputs[f"cand{k:02d}"] = self.store.rel(path)
            self.generated += 1
        return Output(
            outputs=outputs,
            data={
                "seeds": found.seeds,
                "frames": [len(v) for v in found.videos],
                "fps": self.cfg.generator.fps,
                "compute": {
                    **compute,
                    **{f"seconds_{phase}": round(v, 3) for phase, v in found.phases.items()},
                    "candidates_made": len(found.videos),
                },
                "search": {"strategy": self.cfg.search.name, "surprises": found.surprises, "trace": found.trace},
            },
        )

    def _recorded_frames(self, item_id: str) -> dict[int, int]:
        previous = self.store.read(self.name, item_id)
        if previous is None or not previous.done:
            return {}
        return dict(enumerate(previous.data.get("frames", [])))

    def validate(self, record: Record) -> None:
        if self.strategy.in_loop:  # the seeds are the lineages' starting seeds, as recorded
            seeds = [int(s) for s in record.data.get("seeds", [])]
            if len(seeds) != self.strategy.num_candidates(self.cfg.search):
                raise ValueError(f"record of item {record.item} is not of this search's candidates")
        else:
            seeds = candidate_seeds(self.cfg.search)
        frames = record.data.get("frames", [])
        if len(frames) != len(seeds):
            raise ValueError(f"record of item {record.item} has no frame counts for {len(seeds)} candidates")
        for k, s in enumerate(seeds):
            if not self._valid(self.candidate_path(record.item, k, s), frames[k]):
                raise ValueError(f"candidate {k} of item {record.item} is missing or invalid")
