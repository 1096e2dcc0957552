"""Every benchmark in one run, and their ratios side by side at the end.

    python benchmarks/all.py [--quick]

Runs ``startup.py``, ``pip_run.py``, ``digests.py``, ``verify.py --million`` and
``fuzz_diagnose.py`` one after the other with this interpreter (each prints its own full table as
it goes), then repeats the line of each that holds its result. ``--quick`` uses fewer rounds and
cases, and no million-entry cache (minutes instead of twenty; the ratios are noisier). Exit 1 if
any benchmark failed or judged FAIL.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, full arguments, quick arguments, the lines of its output that hold its result)
BENCHMARKS = [
    ("startup.py", [], ["--rounds", "8", "--loops", "25"], r"^(bare|guarded|import-sys|setuptools|"
     r"guard-only|empty-mod|no-pth) |^over the no-pth floor|^verdict"),
    ("pip_run.py", [], ["--rounds", "6"], r"^  `|^    off"),
    ("digests.py", [], ["--rounds", "6", "--read-loops", "10"],
     r"^  \S.*: (wall|CPU) time|^    off|ratio of each|digests' share|DigestingBody adds"),
    ("verify.py", ["--million"], ["--rounds", "3"],
     r"^    ratio |verify memory|^verdict"),
    ("fuzz_diagnose.py", [], ["--cases", "20000"], r"cases in|violations|deliberately"),
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and cases")
    quick = parser.parse_args().quick
    results: list[tuple[str, int, list[str]]] = []
    for script, full, fast, pattern in BENCHMARKS:
        command = [sys.executable, str(HERE / script), *(fast if quick else full)]
        print(f"\n$ {' '.join(command)}", flush=True)
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        sys.stdout.write(run.stdout + run.stderr)
        lines = [line for line in run.stdout.splitlines() if re.search(pattern, line)]
        results.append((script, run.returncode, lines))
    print("\n==== side by side " + "=" * 60)
    for script, returncode, lines in results:
        print(f"{script} (exit {returncode})")
        for line in lines:
            print(f"  {line.strip()}")
    return 1 if any(returncode != 0 for _, returncode, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
