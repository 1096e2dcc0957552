"""Does the guard read cached bodies on a healthy warm cache? strace says, side by side.

    python benchmarks/body_reads.py --python /path/to/venv/bin/python

The venv must have pip and the guard installed. Serves six small wheels from the tests' loopback
index, fills a cache once, then runs a warm `pip download` and `pip install --target` under
`strace -f` with `PIP_CACHE_GUARD=0` and without, and counts the opens of `.body` files and the
bytes read from them. Needs strace; not a test: it judges nothing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.index import LoopbackIndex  # noqa: E402  (the tests' own loopback index)
from support.runner import hermetic_env  # noqa: E402
from support.wheels import build_default_set  # noqa: E402

_OPEN = re.compile(r'^(\d+)\s+openat\(.*"[^"]+\.body".* = (\d+)$')
_READ = re.compile(r"^(\d+)\s+read\((\d+),.* = (\d+)$")
_CLOSE = re.compile(r"^(\d+)\s+close\((\d+)\)")


def body_reads(log: Path) -> tuple[int, int]:
    """(opens of .body files, bytes read through those file descriptors) in an strace log."""
    open_fds: set[tuple[str, str]] = set()
    opens = read = 0
    for line in log.read_text(errors="replace").splitlines():
        if match := _OPEN.match(line):
            opens += 1
            open_fds.add((match.group(1), match.group(2)))
        elif (match := _READ.match(line)) and (match.group(1), match.group(2)) in open_fds:
            read += int(match.group(3))
        elif match := _CLOSE.match(line):
            open_fds.discard((match.group(1), match.group(2)))
    return opens, read


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="a venv's python with pip and the guard")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pcg-body-reads-"))
    try:
        wheels = build_default_set(tmp / "wheels")
        with LoopbackIndex(w.path for w in wheels.values()) as index:

            def pip(command: list[str], env: dict[str, str], trace: Path | None = None) -> None:
                cmd = [args.python, "-m", "pip", *command, "--cache-dir", str(tmp / "cache")]
                cmd += ["--index-url", index.url, "--trusted-host", "127.0.0.1", "--no-deps"]
                if trace is not None:
                    cmd = ["strace", "-f", "-e", "trace=openat,read,close", "-o", str(trace), *cmd]
                subprocess.run(
                    [*cmd, *wheels], env=hermetic_env(env), check=True, capture_output=True
                )

            pip(["download", "-d", str(tmp / "fill")], {})
            print(f"warm cache, six wheels ({sum(w.size for w in wheels.values()):,} bytes)")
            for command in ("download", "install"):
                for label, env in (("guard off", {"PIP_CACHE_GUARD": "0"}), ("guard on", {})):
                    log = tmp / f"{command}-{label}.log"
                    where = (
                        ["-d", str(tmp / log.stem)]
                        if command == "download"
                        else ["-t", str(tmp / log.stem)]
                    )
                    pip([command, *where], env, log)
                    opens, read = body_reads(log)
                    print(
                        f"  pip {command:8} {label:9}: .body opened {opens}x, {read:,} bytes read"
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
