"""``python -m pipeline.submission run=DIR [run=DIR ...] out=DIR [descriptions=op|bpp] [KEY=VALUE ...]``
builds a Verified package from finished runs (KEY: a ``public_info`` field of the card, e.g.
``organization=acme model=magi-1-24b``); ``python -m pipeline.submission check=DIR [expected=198]``
checks an existing package. Exit 0 when the package passes, 2 with every problem named."""

from __future__ import annotations

import sys

from pipeline.errors import PipelineError

CARD_KEYS = (
    "organization",
    "model",
    "model_version",
    "availability",
    "model_source",
    "date",
    "generation_cost",
    "generation_gpu",
    "generation_ngpu",
    "generation_time",
    "parameters",
    "bon_sampling_method",
    "bon_sampling_source",
    "templater",
    "provider",
    "tech_report",
    "comments",
)


def parse(argv: list[str]) -> tuple[list[str], dict[str, str], dict[str, str]]:
    runs, options, given = [], {}, {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not value:
            raise PipelineError(f"{arg!r}: write KEY=VALUE (run=DIR, out=DIR, check=DIR, descriptions=op|bpp, ...)")
        if key == "run":
            runs.append(value)
        elif key in ("out", "check", "expected", "descriptions"):
            options[key] = value
        elif key in CARD_KEYS:
            given[key] = value
        else:
            raise PipelineError(f"{key}=: not an option nor a card field ({', '.join(CARD_KEYS)})")
    if options.get("descriptions", "op") not in ("op", "bpp"):
        raise PipelineError(f"descriptions={options['descriptions']}: op (original) or bpp (best-practice prompts)")
    if "check" not in options and (not runs or "out" not in options):
        raise PipelineError("give run=DIR (one per seed) and out=DIR, or check=DIR")
    return runs, options, given


def main(argv: list[str] | None = None) -> int:
    from .checks import EXPECTED_FILES, package_problems
    from .package import summary, write_package

    try:
        runs, options, given = parse(sys.argv[1:] if argv is None else argv)
        if "check" in options:
            problems = package_problems(options["check"], int(options.get("expected", EXPECTED_FILES)))
            if problems:
                raise PipelineError(f"the package breaks {len(problems)} rule(s):\n  " + "\n  ".join(problems))
            print(f"{options['check']}: passes the leaderboard's checks")
            return 0
        out, the_card, parts = write_package(runs, options["out"], given, options.get("descriptions"))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(out, the_card, parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
