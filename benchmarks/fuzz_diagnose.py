"""Fuzz the classifier against the real CacheControl loaders and print what happened.

    python benchmarks/fuzz_diagnose.py [--cases 100000] [--seed 1] [--pip-source /work/pips/21.3.1]

Each case damages a valid entry (``tests/support/loaders.py``: bit flips, truncations, insertions,
deletions, overwrites, random ``cc=`` prefixes, well-formed msgpack of wrong shapes and types, and
sometimes two of them), asks ``diagnose`` and pip's real loader and controller, and counts the pair
(verdict, what pip got). ``--pip-source`` puts another pip's unpacked sources first on ``sys.path``
so its vendored CacheControl is the one tested. Exit 1 if any verdict breaks the rules of
``support.loaders.violation`` (the examples are printed), else 0.
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="per CacheControl copy")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pip-source", type=Path, help="a directory holding pip/ to test instead")
    options = parser.parse_args()
    # The loaders must be pip's own, unpatched: no guard finder in this process.
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "_pip_cache_guard_finder", 0)]
    if options.pip_source:
        sys.path.insert(0, str(options.pip_source))
    sys.path.insert(0, str(TESTS))
    from pip_cache_guard.diagnose import DAMAGE_KINDS, diagnose

    from support.loaders import BODY, OUTCOMES, REQUEST_HEADERS, Flavour, damage, violation

    failed = False
    for module in ("pip._vendor.cachecontrol.serialize", "cachecontrol.serialize"):
        flavour = Flavour(module)
        origin = Path(flavour.serialize.__file__).parent
        entry = flavour.entry()
        body_size = len(BODY) if flavour.separate_body else None
        rng = random.Random(options.seed)
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        violations: collections.Counter[str] = collections.Counter()
        examples: dict[str, tuple[str, bytes]] = {}
        stricter: collections.Counter[str] = collections.Counter()
        started = time.perf_counter()
        for _ in range(options.cases):
            name, damaged = damage(rng, flavour, entry)
            outcome = flavour.outcome(damaged)
            try:
                verdict = diagnose(
                    damaged,
                    flavour.unpack,
                    REQUEST_HEADERS,
                    body_size=body_size,
                    reader=flavour.reader,
                )
            except Exception as exc:  # the one thing diagnose must never do
                kind, problem = "raised", f"diagnose raised {type(exc).__name__}"
            else:
                kind, problem = verdict.kind, violation(verdict, outcome) or ""
            counts[kind, outcome] += 1
            if kind in DAMAGE_KINDS and outcome == "usable" and not problem:
                stricter[_reason_class(verdict.reason)] += 1
            if problem:
                violations[problem[:100]] += 1
                examples.setdefault(problem[:100], (name, damaged))
        elapsed = time.perf_counter() - started
        print(f"\n{module} ({origin}): {options.cases} cases in {elapsed:.1f} s")
        print(f"  {'verdict':<15}" + "".join(f"{outcome:>9}" for outcome in OUTCOMES))
        for kind in sorted({kind for kind, _ in counts}):
            row = "".join(f"{counts[kind, outcome]:>9}" for outcome in OUTCOMES)
            print(f"  {kind:<15}{row}")
        print(f"  damage pip could still read (deliberately strict): {sum(stricter.values())}")
        for reason, number in stricter.most_common():
            print(f"    {number:>6}  {reason}")
        print(f"  violations: {sum(violations.values())}")
        for problem, number in violations.most_common():
            name, damaged = examples[problem]
            print(f"    {number} x {problem}\n      e.g. {name}: {damaged[:300]!r}")
        failed = failed or bool(violations)
    print(
        "\noutcomes: none = loader gives nothing, raises = loader raises, chokes = pip fails on"
        " what it loaded,\nskipped = CacheControl turns it away itself, usable = pip uses it"
    )
    return 1 if failed else 0


def _reason_class(reason: str) -> str:
    """A verdict's reason without the numbers and type names that vary from case to case."""
    return re.sub(r"\d+", "N", re.sub(r"(is a) \w+", r"\1 ...", reason))


if __name__ == "__main__":
    sys.exit(main())
