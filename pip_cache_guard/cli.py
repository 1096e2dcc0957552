"""The ``pip-cache-guard`` command: argument parsing and exit codes, nothing more.

Exit codes: 0 clean (or everything fixed), 1 problems remain (or the hook is not active), 2 usage or
I/O error. JSON goes to stdout; text meant for people, and progress, to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from pip_cache_guard import __version__

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pip-cache-guard",
        description="Check pip's cache, and whether the guard is watching pip here.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser(
        "selftest",
        help="prove, offline, that the hook heals a damaged entry with the pip installed here",
        description="Write a damaged entry into a throwaway cache and make this environment's pip "
        "read it through the hook: the entry must become a miss, be deleted and be recorded. "
        "Your cache, report and history are not touched. Exit 0 passed, 1 failed.",
    )

    verify = commands.add_parser(
        "verify",
        help="check every entry of pip's cache",
        description="Check every HTTP entry, body and cached wheel of pip's cache with the same "
        "diagnosis the hook uses. Exit 0 clean (or all fixed), 1 problems remain, 2 error.",
    )
    where = verify.add_mutually_exclusive_group()
    where.add_argument(
        "--cache-dir",
        help="the cache to check: a pip cache, or a CacheControl directory itself (Poetry's "
        "_http_, pip-audit's...) (default: where pip would look)",
    )
    where.add_argument(
        "--all",
        action="store_true",
        help="check the caches of pip, pip-tools, pipenv, Poetry and pip-audit found here",
    )
    verify.add_argument("--fix", action="store_true", help="delete exactly the damaged files")
    verify.add_argument("--json", action="store_true", help="print a JSON document on stdout")
    verify.add_argument(
        "--digests",
        action="store_true",
        help="also hash every cached body against its digest (the guard's record, or the "
        "server's); count those that have none",
    )

    doctor = commands.add_parser(
        "doctor",
        help="is the hook installed and active here; which pip, which cache, how much space",
        description="Report whether the hook is installed and active for this interpreter, the "
        "pip version and patch point, the cache directory, its size, free disk space and recent "
        "incidents. Exit 0 healthy, 1 something needs attention.",
    )
    doctor.add_argument("--cache-dir", help="the cache to look at (default: where pip would look)")
    doctor.add_argument("--json", action="store_true", help="print a JSON document on stdout")

    history = commands.add_parser(
        "history",
        help="past incidents, newest first",
        description="List the incidents the hook has recorded, newest first.",
    )
    history.add_argument("--json", action="store_true", help="print a JSON document on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pip_cache_guard import hook

    hook.not_a_pip_run()  # doctor imports pip's controller: its exit handler must not report
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        if args.command == "selftest":
            return _selftest()
        if args.command == "verify":
            return _verify(args)
        if args.command == "doctor":
            return _doctor(args)
        return _history(args)
    except OSError as exc:
        return _io_error(exc)


def _io_error(exc: OSError) -> int:
    where = f": {exc.filename}" if exc.filename else ""
    print(f"pip-cache-guard: error: {exc.strerror or exc}{where}", file=sys.stderr)
    return EXIT_ERROR


def _verify(args: argparse.Namespace) -> int:
    if args.all:
        return _verify_all(args)
    command = ["pip-cache-guard", "verify"]
    return run_verify(args.cache_dir, args.fix, args.json, command, digests=args.digests)


def run_verify(
    cache_dir: str | None,
    fix: bool,
    as_json: bool,
    command: Sequence[str],
    digests: bool = False,
) -> int:
    """``verify``'s whole run and exit code; ``pip cache verify`` calls it too. ``command`` is
    how the user ran it: the text advises it with ``--fix``, naming the cache unless it is the
    default one, so that run as printed it fixes the cache just checked (with ``--digests``,
    which found what only it finds)."""
    from pip_cache_guard import render
    from pip_cache_guard.locate import legacy_dir_is_stale, locate
    from pip_cache_guard.verify import CacheMissing, verify

    try:
        location = locate(cache_dir)
        with _progress(enabled=not as_json and sys.stderr.isatty()) as advance:
            scan = verify(
                location,
                fix=fix,
                progress=advance,
                legacy_is_stale=legacy_dir_is_stale(),
                digests=digests,
            )
    except CacheMissing as exc:
        print(f"pip-cache-guard: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        return _io_error(exc)
    options = ["--digests", "--fix"] if digests else ["--fix"]
    fix_command = command_line([*command, *_naming(location.root), *options])
    _emit(as_json, render.verify_json(scan), render.verify_text(scan, fix_command))
    if scan.errors:
        return EXIT_ERROR
    return EXIT_PROBLEMS if scan.remaining_found else EXIT_OK


def _naming(root: str) -> list[str]:
    """The option that chooses the cache at ``root``: none for pip's default one."""
    from pip_cache_guard.locate import default_cache_dir

    def same(path: str) -> str:
        return os.path.normcase(os.path.realpath(os.path.expanduser(path)))

    return [] if same(root) == same(default_cache_dir()) else ["--cache-dir", root]


def command_line(words: Sequence[str]) -> str:
    """``words`` as one command line to paste into this platform's shell."""
    if os.name == "nt":  # Windows: written to the documentation, run only in the forge's workflow
        import subprocess  # only for its quoting, which is cmd.exe's

        return subprocess.list2cmdline(words)
    return shlex.join(words)


def this_pip() -> list[str]:
    """How to run the pip ``pip cache verify`` runs in, as pip's own advice to upgrade says it
    (pip 22.2+): ``pip`` when that name on PATH is this pip, else ``<python> -m pip``."""
    try:
        from pip._internal.utils.entrypoints import get_best_invocation_for_this_pip
    except ImportError:
        return [sys.executable, "-m", "pip"]
    invocation = get_best_invocation_for_this_pip()
    python, module_flag, rest = invocation.rpartition(" -m pip")
    return [python, "-m", "pip"] if module_flag and not rest else [invocation]


def _verify_all(args: argparse.Namespace) -> int:
    """Every tool's cache that exists, one section each; the exit code covers them all."""
    from pip_cache_guard import render
    from pip_cache_guard.locate import CacheLocation, legacy_dir_is_stale, tool_caches
    from pip_cache_guard.verify import CacheMissing, verify

    scans = []
    for cache in tool_caches():
        try:
            with _progress(enabled=not args.json and sys.stderr.isatty()) as advance:
                location = CacheLocation(cache.path, cache.source, False)
                scan = verify(
                    location,
                    fix=args.fix,
                    progress=advance,
                    legacy_is_stale=legacy_dir_is_stale(),
                    digests=args.digests,
                )
        except CacheMissing:
            continue  # this tool keeps no cache here
        scans.append((cache, scan))
    options = ["--digests", "--fix"] if args.digests else ["--fix"]
    fix_command = command_line(["pip-cache-guard", "verify", "--all", *options])
    _emit(args.json, render.verify_all_json(scans), render.verify_all_text(scans, fix_command))
    if any(scan.errors for _cache, scan in scans):
        return EXIT_ERROR
    return EXIT_PROBLEMS if any(scan.remaining_found for _cache, scan in scans) else EXIT_OK


def _selftest() -> int:
    from pip_cache_guard.selftest import run

    outcome = run()
    if outcome.passed:
        print(f"pip-cache-guard: {outcome.message}", file=sys.stderr)
        return EXIT_OK
    print(f"pip-cache-guard: selftest FAILED: {outcome.message}", file=sys.stderr)
    return EXIT_PROBLEMS


def _doctor(args: argparse.Namespace) -> int:
    from pip_cache_guard import render
    from pip_cache_guard.doctor import examine

    health = examine(args.cache_dir)
    _emit(args.json, render.doctor_json(health), render.doctor_text(health))
    return EXIT_OK if health.healthy else EXIT_PROBLEMS


def _history(args: argparse.Namespace) -> int:
    from pip_cache_guard import history, render

    incidents = history.read()
    text = render.history_text(incidents, history.history_path())
    _emit(args.json, render.history_json(incidents), text)
    return EXIT_OK


def _emit(as_json: bool, document: Any, text: str) -> None:
    if as_json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stderr.write(text)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A live counter on a terminal, drawn by pip's own copy of rich (no extra dependency)."""
    if not enabled:
        yield None
        return
    try:
        from pip._vendor.rich.console import Console
        from pip._vendor.rich.progress import (
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:  # pip older than 22, or no pip: scan without a display
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("checking"), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("verify", total=None)
        yield lambda count: progress.advance(task, count)
