"""``submission.yaml``: the card of a Verified submission, filled from the runs' records.

What the records decide is filled: input type, fps and resolution (measured on the videos), the
best-of-N size and method, the prompt set (op | bpp), the GPUs per model copy and the measured
generation time per submitted video, and the Verified scores (percent, mean and sample std over
the runs). What only a person may state (organisation, availability, cost, terms, warranties, ...)
is left empty and listed by :func:`person_fields`; no tool sets the terms or warranties.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline.benchmarks.physicsiq.verified import FIELDS

PERSON = (
    "organization",
    "model_version",
    "availability",
    "model_source",
    "generation_cost",
    "generation_gpu",
)


def card(facts: dict[str, Any], scores: dict[str, float], given: dict[str, str]) -> dict[str, Any]:
    """The card from the runs' ``facts`` (:func:`package.run_facts`), the aggregated Verified
    ``scores`` and the fields ``given`` on the command line (``key=value``, any public_info key)."""
    n = facts["candidates"]
    public: dict[str, Any] = {
        "organization": None,
        "model": facts["model"],
        "model_version": None,
        "input_type": facts["mode"],
        "fps": facts["fps"],
        "resolution": facts["resolution"],
        "bon_sampling": n,
        "prompt_upsampling": False,
        "descriptions": facts["descriptions"],
        "availability": None,
        "model_source": None,
        "date": dt.date.today().isoformat(),
        "generation_cost": None,
        "generation_gpu": None,
        "generation_ngpu": facts["gpus_per_copy"],
        "generation_time": f"{facts['seconds_per_video']} s per submitted video (all {n} candidate(s), measured)",
    }
    if n > 1:
        public["bon_sampling_method"] = facts["selection"]
    public.update(given)
    reported = {f"{name}_{stat}": round(scores[f"{name}_{stat}"], 2) for name in FIELDS for stat in ("mean", "std")}
    return {
        "public_info": public,
        "reported_scores": reported,  # percent: mean and sample std (ddof 1) over the runs
        "terms": {"terms_version": "1.0", "terms_accepted": None, "accepted_on_behalf_of": None, "accepted_at": None},
        "warranties": None,  # the five statements of the leaderboard's template, answered by a person
    }


def person_fields(card: dict[str, Any]) -> list[str]:
    """The fields still empty that a person must fill before uploading."""
    empty = [f"public_info.{k}" for k in PERSON if card["public_info"].get(k) in (None, "")]
    empty += [f"terms.{k}" for k, v in card["terms"].items() if v is None]
    if card.get("warranties") is None:
        empty.append("warranties")
    return empty
