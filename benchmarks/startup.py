#!/usr/bin/env python3
"""Startup cost of pip-cache-guard's ``.pth`` hook in a Python process that never imports pip.

Builds the guard wheel (or takes ``--wheel``), installs it with its dependencies into two venvs
made from the same interpreter, deletes the guard's startup file from the "bare" one,
and times ``python -c pass`` in both, interleaved start by start. Judged on the median of the
per-round ratios guarded/bare against ``--budget`` (default: at most 2 % slower; the goal is 1 %),
and on the guard's ``.pth`` alone costing no more than setuptools' ``distutils-precedence.pth``
alone over a venv without any ``.pth`` (both references are timed in the same run). Also checks
that the hook is active, that wrapt stays unloaded and that at most two modules are added.
A second table times ``site.main()`` from inside ``python -S`` in every venv: the ``.pth``
files' own cost in microseconds, with far less noise than whole starts, which shows what any
``.pth`` importing a package costs (``empty-pkg``) and what rule 1's silence costs
(``guard-plain``).

Standard library only. Exit status: 0 PASS, 1 FAIL, 2 the benchmark could not run.

    python benchmarks/startup.py [--rounds 20] [--loops 50] [--with-wrapt-reference]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOOK_FILES = ("pip_cache_guard.pth", "pip_cache_guard.start")  # the .start: from older wheels
START_FILES_RUN = (3, 15)  # PEP 829
SETUPTOOLS_PTH = "distutils-precedence.pth"
GOAL = 0.01  # the slowdown aimed at; the budget is what passes
MAX_EXTRA_MODULES = 2
MODULES_PROBE = (
    "import sys; print('wrapt' in sys.modules, len(sys.modules), 'pip_cache_guard' in sys.modules)"
)
# Counts the guard's finders by the mark they carry for idempotency: 1 means the hook ran
# (and ran once, although site.py executes a venv's .pth twice before 3.15), 0 means no hook.
FINDER_PROBE = (
    "import sys; print(sum(bool(getattr(f, '_pip_cache_guard_finder', False))"
    " for f in sys.meta_path))"
)


# site.main() timed inside a process started with -S: what the .pth files cost, free of the
# noise of starting a process. The same step a normal start takes, only timed from inside.
SITE_MAIN_PROBE = (
    "import time; t = time.perf_counter_ns(); import site; site.main(); "
    "print(time.perf_counter_ns() - t)"
)


class BenchError(Exception):
    """A setup step failed; the benchmark cannot say PASS or FAIL."""


@dataclass
class Venv:
    """One benchmarked environment and the start times measured in it (seconds)."""

    name: str
    path: Path
    python: Path
    site_packages: Path
    times: list[list[float]] = field(default_factory=list)  # one list of starts per round
    site_main: list[float] = field(default_factory=list)  # median site.main() per round, in s


def clean_env() -> dict[str, str]:
    """The environment for every child: no PYTHON* variable and no guard switch."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "PIP_CACHE_GUARD", "VIRTUAL_ENV"))
    }


def run(cmd: Sequence[str | Path], what: str, env: dict[str, str]) -> str:
    """Run a setup command, return its stdout, raise BenchError with its output on failure."""
    result = subprocess.run(
        [str(part) for part in cmd], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise BenchError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def build_wheel(dest: Path, env: dict[str, str]) -> Path:
    """Build the guard wheel from the repository root into ``dest``."""
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dest, REPO]
    run(cmd, "building the wheel", env)
    wheels = sorted(dest.glob("pip_cache_guard-*.whl"))
    if len(wheels) != 1:
        raise BenchError(f"expected one pip_cache_guard wheel in {dest}, found {wheels}")
    return wheels[0]


def make_venv(name: str, root: Path, python: str, wheel: Path, env: dict[str, str]) -> Venv:
    """Create a venv with ``python`` and install ``wheel`` (with dependencies) into it."""
    path = root / name
    run([python, "-m", "venv", path], f"creating venv {name}", env)
    bindir = path / ("Scripts" if os.name == "nt" else "bin")
    vpython = bindir / ("python.exe" if os.name == "nt" else "python")
    pip = [vpython, "-m", "pip", "-q", "--disable-pip-version-check"]
    wheelhouse = root / "wheelhouse"  # the wheel and its dependencies, downloaded once for all
    if not wheelhouse.is_dir():
        run([*pip, "download", "-d", wheelhouse, wheel], "downloading the dependencies", env)
    install = [*pip, "install", "--no-index", "--find-links", wheelhouse, wheel]
    run(install, f"installing the wheel into {name}", env)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(run([vpython, "-c", purelib], "locating site-packages", env).strip())
    return Venv(name, path, vpython, site)


def remove_hook(venv: Venv) -> None:
    """Delete the guard's startup files from a venv's site-packages."""
    for name in HOOK_FILES:
        (venv.site_packages / name).unlink(missing_ok=True)


def probe(venv: Venv, code: str, env: dict[str, str], *options: str) -> tuple[str, str]:
    """Run ``python [options] -c code`` in a venv; return (stdout, stderr)."""
    result = subprocess.run(
        [str(venv.python), *options, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"{venv.name}: python -c {code!r} failed:\n{result.stderr}")
    return result.stdout.strip(), result.stderr


def start_once(command: list[str], env: dict[str, str], clock: str) -> float:
    """Start ``command`` once; its wall time (perf_counter around it) or, ``clock="cpu"``, the
    CPU time the child used (user + system, from ``wait4``): on a machine others keep busy, the
    CPU time hardly moves while the wall time waits for a core."""
    start = time.perf_counter()
    if clock == "wall" or not hasattr(os, "wait4"):
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, command)
    return usage.ru_utime + usage.ru_stime


def time_starts(
    venvs: list[Venv],
    rounds: int,
    loops: int,
    rng: random.Random,
    env: dict[str, str],
    clock: str = "wall",
) -> None:
    """Time ``python -c pass`` ``rounds`` x ``loops`` times per venv, interleaved start by start.

    Each step starts every venv once, in a fresh random order, so drift on the machine hits all
    venvs alike. Each start is timed alone (``start_once``).
    """
    commands = {v.name: [str(v.python), "-c", "pass"] for v in venvs}
    devnull = subprocess.DEVNULL
    order = list(venvs)
    for _ in range(3):  # warm-up: page cache, dentries; not recorded
        for venv in order:
            subprocess.run(commands[venv.name], env=env, stdout=devnull, check=True)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            per_round: dict[str, list[float]] = {v.name: [] for v in venvs}
            for _ in range(loops):
                rng.shuffle(order)
                for venv in order:
                    per_round[venv.name].append(start_once(commands[venv.name], env, clock))
            for venv in venvs:
                venv.times.append(per_round[venv.name])
    finally:
        if gc_was_enabled:
            gc.enable()


def time_site_main(
    venvs: list[Venv], rounds: int, loops: int, rng: random.Random, env: dict[str, str]
) -> None:
    """Time ``site.main()`` in ``python -S`` ``rounds`` x ``loops`` times per venv, interleaved."""
    order = list(venvs)
    for _ in range(rounds):
        per_round: dict[str, list[float]] = {v.name: [] for v in venvs}
        for _ in range(loops):
            rng.shuffle(order)
            for venv in order:
                per_round[venv.name].append(int(probe(venv, SITE_MAIN_PROBE, env, "-S")[0]) / 1e9)
        for venv in venvs:
            venv.site_main.append(statistics.median(per_round[venv.name]))


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile) of ``values``."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def round_ratios(venv: Venv, bare: Venv) -> list[float]:
    """Per-round ratio of the median start time of ``venv`` to that of ``bare``."""
    return [
        statistics.median(mine) / statistics.median(theirs)
        for mine, theirs in zip(venv.times, bare.times)
    ]


def only_startup_files(venv: Venv, keep: Sequence[str] = ()) -> None:
    """Delete every startup file (``.pth``, PEP 829 ``.start``) of a venv but those in ``keep``."""
    for path in [*venv.site_packages.glob("*.pth"), *venv.site_packages.glob("*.start")]:
        if path.name not in keep:
            path.unlink()


def reference_venvs(tmp: Path, python: str, wheel: Path, env: dict[str, str]) -> list[Venv]:
    """Venvs that put the guard's cost in context, all on one floor: ``no-pth`` (no ``.pth``
    at all), and that floor plus one ``.pth``: ``import sys`` only; importing an empty
    precompiled module; importing an empty precompiled package (the least any ``.pth`` that
    imports a package can cost); setuptools' ``distutils-precedence.pth`` (present in most
    venvs); the guard's alone (``guard-only``), which must cost no more than setuptools'. And
    ``guard-plain``: the guarded venv (setuptools' ``.pth`` kept) with the guard's line cut to
    ``import pip_cache_guard``, which would print a traceback at every start once the package
    directory is gone; set against ``guarded`` it prices rule 1's silence. From Python 3.15,
    ``guard-start``: the guarded venv plus a PEP 829 ``pip_cache_guard.start``, which site.py
    then runs instead of the ``.pth`` line: what moving to ``.start`` would cost."""
    names = ("no-pth", "import-sys", "empty-mod", "empty-pkg", "setuptools", "guard-only")
    made: list[Venv] = []
    for name in (*names, "guard-plain"):
        venv = make_venv(name, tmp, python, wheel, env)
        keep = {
            "setuptools": [SETUPTOOLS_PTH],
            "guard-only": [HOOK_FILES[0]],
            "guard-plain": [SETUPTOOLS_PTH, HOOK_FILES[0]],
        }
        only_startup_files(venv, keep.get(name, []))
        made.append(venv)
    _, import_sys, empty_module, empty_package, setuptools, _, plain = made
    (import_sys.site_packages / "floor.pth").write_text("import sys\n")
    module = empty_module.site_packages / "floor_empty_module.py"
    module.write_text("")
    (empty_module.site_packages / "floor.pth").write_text("import floor_empty_module\n")
    package = empty_package.site_packages / "floor_empty_package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (empty_package.site_packages / "floor.pth").write_text("import floor_empty_package\n")
    (plain.site_packages / HOOK_FILES[0]).write_text("import pip_cache_guard\n")
    for path in (module, package):
        run([empty_module.python, "-m", "compileall", "-q", path], "compiling", env)
    if version_of(plain, env) >= START_FILES_RUN:
        start = make_venv("guard-start", tmp, python, wheel, env)
        (start.site_packages / HOOK_FILES[1]).write_text("pip_cache_guard:install\n")
        made.append(start)
    if not (setuptools.site_packages / SETUPTOOLS_PTH).is_file():  # Python 3.12+: no setuptools
        install = [setuptools.python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        run([*install, "setuptools"], "installing setuptools", env)
    if not (setuptools.site_packages / SETUPTOOLS_PTH).is_file():
        print(f"note: this setuptools has no {SETUPTOOLS_PTH}; its reference is left out")
        made.remove(setuptools)
    return made


def version_of(venv: Venv, env: dict[str, str]) -> tuple[int, int]:
    """``(major, minor)`` of the venv's interpreter."""
    major, minor = probe(venv, "import sys; print(*sys.version_info[:2])", env)[0].split()
    return int(major), int(minor)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venvs")
    parser.add_argument("--wheel", type=Path, help="use this guard wheel instead of building one")
    parser.add_argument("--rounds", type=int, default=20, help="rounds (default 20)")
    parser.add_argument("--loops", type=int, default=50, help="starts per venv per round (50)")
    parser.add_argument(
        "--budget", type=float, default=0.02, help="allowed slowdown, 0.02 = 2%% (default)"
    )
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the reference venvs (no .pth at all; only `import sys`; only an empty "
        "module's or package's import; only setuptools' .pth; only the guard's .pth; the guard's "
        "with a plain import line)",
    )
    parser.add_argument(
        "--with-wrapt-reference",
        action="store_true",
        help="add a third venv whose .pth does `import wrapt`, for comparison",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time each start by the wall clock (default) or by the CPU time the child used "
        "(steadier on a busy machine)",
    )
    parser.add_argument("--seed", type=int, help="seed for the interleaving order")
    parser.add_argument("--keep", action="store_true", help="keep the temporary venvs")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.loops < 1:
        parser.error("--rounds and --loops must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Set up, measure, print the table; 0 PASS, 1 FAIL, 2 error."""
    args = parse_args(argv)
    env = clean_env()
    tmp = Path(tempfile.mkdtemp(prefix="pcg-startup-"))
    try:
        return benchmark(args, tmp, env)
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def benchmark(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> int:
    """The whole run inside the temporary directory ``tmp``."""
    t0 = time.perf_counter()
    wheel = args.wheel.resolve() if args.wheel else build_wheel(tmp / "wheel", env)
    if not wheel.is_file():
        raise BenchError(f"no such wheel: {wheel}")

    bare = make_venv("bare", tmp, args.python, wheel, env)
    remove_hook(bare)
    guarded = make_venv("guarded", tmp, args.python, wheel, env)
    venvs = [bare, guarded]
    if not args.no_floor:
        venvs.extend(reference_venvs(tmp, args.python, wheel, env))
    if args.with_wrapt_reference:
        ref = make_venv("wrapt-ref", tmp, args.python, wheel, env)
        remove_hook(ref)
        (ref.site_packages / "wrapt_reference.pth").write_text("import wrapt\n")
        venvs.append(ref)
    missing = [name for name in HOOK_FILES[:1] if not (guarded.site_packages / name).is_file()]
    setup_s = time.perf_counter() - t0

    version = probe(bare, "import sys; print(sys.version.split()[0])", env)[0]
    finders = {v.name: int(probe(v, FINDER_PROBE, env)[0]) for v in venvs}
    modules = {v.name: probe(v, MODULES_PROBE, env)[0] for v in venvs}
    importtime = probe(guarded, "pass", env, "-X", "importtime")[1].splitlines()
    guard_lines = [line for line in importtime if "pip_cache_guard" in line]

    t1 = time.perf_counter()
    rng = random.Random(args.seed)
    time_starts(venvs, args.rounds, args.loops, rng, env, args.clock)
    time_site_main(venvs, args.rounds, args.loops, rng, env)
    timing_s = time.perf_counter() - t1

    # ---- report -------------------------------------------------------------------------------
    print(f"pip-cache-guard startup benchmark: {wheel.name}")
    print(f"python {version} ({args.python}); {args.rounds} rounds x {args.loops} starts per venv,")
    print(f"interleaved in random order, {args.clock} time of each start;")
    print(f"setup {setup_s:.0f} s, timing {timing_s:.0f} s")
    print()
    floor = next((venv for venv in venvs if venv.name == "no-pth"), None)
    print(
        f"{'venv':<10} {'median/start':>12} {'IQR of round medians':>22} "
        f"{'ratio to bare: median [IQR]':>30}{'  to no-pth' if floor else ''}"
    )
    for venv in venvs:
        all_starts = [t for r in venv.times for t in r]
        q1, _, q3 = quartiles([statistics.median(r) for r in venv.times])
        ratio_cell = "1 (reference)"
        if venv is not bare:
            r1, r2, r3 = quartiles(round_ratios(venv, bare))
            ratio_cell = f"{r2:.4f} [{r1:.4f}-{r3:.4f}]"
        floor_cell = ""
        if floor is not None:
            floor_cell = f"  {statistics.median(round_ratios(venv, floor)):.4f}"
        print(
            f"{venv.name:<10} {statistics.median(all_starts) * 1e3:>9.2f} ms "
            f"{q1 * 1e3:>11.2f}-{q3 * 1e3:.2f} ms {ratio_cell:>30}{floor_cell}"
        )
    print()

    bare_start = statistics.median(t for r in bare.times for t in r)
    print("site.main() timed inside `python -S` (the .pth files' own cost, little noise):")
    print(f"{'venv':<11} {'site.main':>9} {'over bare [IQR]':>24} {'over no-pth':>12}")
    for venv in venvs:
        print(f"{venv.name:<11} {statistics.median(venv.site_main) * 1e6:>6.0f} us", end="")
        for base in (bare, floor):
            if base is None:
                continue
            extra_us = [(m - b) * 1e6 for m, b in zip(venv.site_main, base.site_main)]
            q1, q2, q3 = quartiles(extra_us)
            share = q2 / (bare_start * 1e6) * 100
            spread = f" [{q1:+.0f}, {q3:+.0f}]" if base is bare else ""
            print(f" {q2:>+6.0f} us ({share:+.2f} %){spread}", end="")
        print()
    print("(in % of a bare start's median)")
    print()

    problems: list[str] = []
    print(f'`python -c "{MODULES_PROBE}"`  (wrapt loaded?, modules)')
    counts: dict[str, int] = {}
    for venv in venvs:
        wrapt_loaded, count, _ = modules[venv.name].split()
        counts[venv.name] = int(count)
        print(
            f"  {venv.name:<10} {wrapt_loaded} {count}   guard finders in sys.meta_path: "
            f"{finders[venv.name]}"
        )
    extra = counts["guarded"] - counts["bare"]
    print(f"  guarded - bare: {extra:+d} modules (at most +{MAX_EXTRA_MODULES} allowed)")
    if modules["guarded"].split()[0] != "False":
        problems.append("wrapt is loaded at start in the guarded venv")
    if not 0 <= extra <= MAX_EXTRA_MODULES:
        problems.append(f"the guarded venv starts with {extra:+d} modules")
    if missing:
        problems.append(f"the guarded venv lacks {', '.join(missing)}")
    if finders["guarded"] != 1:
        problems.append(f"{finders['guarded']} guard finders in the guarded venv (want exactly 1)")
    if finders["bare"] != 0:
        problems.append("the bare venv still runs the hook")
    print()
    # -X importtime does not show what a PEP 829 entry point imports: sys.modules is the test.
    print("`python -X importtime -c pass` (guarded), pip_cache_guard lines:")
    print("  " + (importtime[0] if importtime else "(no output)"))
    for line in guard_lines or ["(none shown)"]:
        print("  " + line)
    if modules["guarded"].split()[2] != "True":
        problems.append("pip_cache_guard is not imported at start in the guarded venv")
    print()

    by_name = {venv.name: venv for venv in venvs}
    if floor is not None and "setuptools" in by_name:
        own = statistics.median(round_ratios(by_name["guard-only"], floor))
        setuptools = statistics.median(round_ratios(by_name["setuptools"], floor))
        print(
            f"over the no-pth floor: the guard's .pth {own:.4f}, setuptools' {SETUPTOOLS_PTH}"
            f" {setuptools:.4f}"
        )
        if own > setuptools:
            problems.append(
                f"the guard's .pth costs more than setuptools' ({own:.4f} > {setuptools:.4f})"
            )
    if "empty-pkg" in by_name:
        over_empty = statistics.median(round_ratios(by_name["guard-only"], by_name["empty-pkg"]))
        met = "met" if over_empty <= 1.0 + GOAL else "not met"
        print(
            f"the guard's .pth over a .pth importing an empty package: {over_empty:.4f}"
            f" (goal <= {1.0 + GOAL:.2f}: {met})"
        )
    if "guard-start" in by_name:
        start_ratio = statistics.median(round_ratios(by_name["guard-start"], bare))
        print(f"with a PEP 829 .start instead of the .pth line: {start_ratio:.4f} over bare")
    ratio = statistics.median(round_ratios(guarded, bare))
    deltas = [
        statistics.median(g) - statistics.median(b) for g, b in zip(guarded.times, bare.times)
    ]
    print(f"guarded - bare: {statistics.median(deltas) * 1e3:+.3f} ms per start (median of rounds)")
    limit = 1.0 + args.budget
    slower = (ratio - 1.0) * 100
    if ratio > limit:
        problems.append(f"guarded/bare = {ratio:.4f} > {limit:.4f}")
    verdict = "FAIL" if problems else "PASS"
    goal = "met" if ratio <= 1.0 + GOAL else "not met"
    print(
        f"verdict: median per-round ratio guarded/bare {ratio:.4f} ({slower:+.2f} %) "
        f"vs budget <= {limit:.4f} (+{args.budget * 100:g} %): {verdict}"
        f" (goal +{GOAL * 100:g} %: {goal})"
    )
    for problem in problems:
        print(f"  FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
