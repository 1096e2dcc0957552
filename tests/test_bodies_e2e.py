"""Cached bodies pip cannot use, healed in the same run: real pip, real bit rot, a loopback index.

One byte flipped in a cached wheel (size unchanged) makes pip fail its hash check on every run;
with the guard, the entry is evicted and pip's own downloader fetches the file once more, in
``pip download``, ``pip install`` and ``pip wheel``, on the direct path and on the batch path
(PEP 658 metadata first). A file that fails again after a fresh download is the index's fault:
pip's error stands after exactly one extra download. One venv per pip, several damages per run.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support import cache
from support.guarded import GuardFiles, assert_clean_exit, outcomes, read_report, summary_block
from support.index import LoopbackIndex
from support.runner import describe, pip_download, run_pip, run_python
from support.venvs import Venv, VenvFactory, find_python
from support.wheels import BuiltWheel, build_sdist

PIPS = ["26.3", "25.3", "25.1.1", "24.0", "23.2.1", "21.3.1"]
# The interpreter of each pip's venv: those test_guard_e2e.py uses too, so a session shares them.
PYTHON_OF = {"25.3": "3.12"}
BATCH_PIPS = [pip for pip in PIPS if pip != "21.3.1"]  # PEP 658 metadata first: pip 22.3+
HASH_ERROR = "THESE PACKAGES DO NOT MATCH THE HASHES"
BODY_MODULES = [
    f"pip._internal.{name}"
    for name in (
        "network.download",
        "utils.hashes",
        "distributions.wheel",
        "req.req_install",
        "utils.unpacking",
    )
]


SDIST_PROJECT = "guardtest-golf"
POLICY_PROJECT = "guardtest-hotel"
# What pip 26.3 says of an sdist whose tar member its data filter refuses (tarfile's PEP 706).
POLICY_ERROR = "Invalid member in the tar file"


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> BuiltWheel:
    """An sdist with an in-tree build backend, which needs alpha from the index to build."""
    return build_sdist(tmp_path_factory.mktemp("sdist"), SDIST_PROJECT, "guardtest-alpha")


def build_policy_sdist(dest: Path) -> Path:
    """An sdist pip refuses to unpack for a policy reason, not because it cannot read it: one
    member is a symbolic link to an absolute path, which tarfile's data filter rejects."""
    path = dest / f"{POLICY_PROJECT.replace('-', '_')}-1.0.tar.gz"
    top = path.name.removesuffix(".tar.gz")
    pkg_info = f"Metadata-Version: 2.1\nName: {POLICY_PROJECT}\nVersion: 1.0\n".encode()
    with tarfile.open(path, "w:gz") as tar:
        member = tarfile.TarInfo(f"{top}/PKG-INFO")
        member.size, member.mtime = len(pkg_info), 1_700_000_000
        tar.addfile(member, io.BytesIO(pkg_info))
        link = tarfile.TarInfo(f"{top}/escape")
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "/etc/hostname", 1_700_000_000
        tar.addfile(link)
    return path


@pytest.fixture(scope="module")
def policy_sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_policy_sdist(tmp_path_factory.mktemp("policy-sdist"))


@pytest.fixture(scope="module")
def body_index_server(
    guardtest_wheels: dict[str, BuiltWheel], sdist: BuiltWheel, policy_sdist: Path
) -> Iterator[LoopbackIndex]:
    """An index of this module's own: its tests switch PEP 658 files and hashes on and off, and
    serve broken files. It also serves the sdists."""
    served = [*(w.path for w in guardtest_wheels.values()), sdist.path, policy_sdist]
    with LoopbackIndex(served) as server:
        yield server


@pytest.fixture
def body_index(body_index_server: LoopbackIndex) -> LoopbackIndex:
    body_index_server.metadata_files = False
    body_index_server.hashes = True
    return body_index_server.fresh()


class Scene:
    """One pip's venv, a cache of the test's own, and the guard's files."""

    def __init__(
        self, venv: Venv, root: Path, index: LoopbackIndex, wheels: dict[str, BuiltWheel]
    ) -> None:
        self.venv, self.root, self.index, self.wheels = venv, root, index, wheels
        self.cache_dir = root / "pip-cache"
        self.files = GuardFiles(root)
        self.legacy = cache.is_legacy(venv.pip_version)

    def url(self, project: str, suffix: str = "") -> str:
        return self.index.file_url(self.wheels[project].filename + suffix)

    def entry(self, project: str, suffix: str = "") -> Path:
        return cache.entry_path(self.cache_dir, self.url(project, suffix), legacy=self.legacy)

    def rot(self, project: str, suffix: str = "", at: float = 0.5) -> None:
        cache.flip_body_byte(self.entry(project, suffix), legacy=self.legacy, at=at)

    def fill(self, projects: list[str]) -> None:
        result = pip_download(self.venv, self.cache_dir, self.index, projects, self.files.env())
        assert_clean_exit(result)
        assert result.stderr == "", describe(result)

    def pip(self, args: list[str], report: str) -> subprocess.CompletedProcess[str]:
        return run_pip(self.venv, args, self.cache_dir, self.index, self.files.env(report=report))

    def healed(
        self, result: subprocess.CompletedProcess[str], report: str, *entries: tuple[str, str]
    ) -> None:
        """Exit 0, the summary and the report name exactly these (project, suffix) entries."""
        assert_clean_exit(result)
        block = summary_block(result.stderr)
        assert "fetched again" in block[0], block
        expected = {cache.cache_key(self.url(*e)): ("bad-body", "refetched") for e in entries}
        assert outcomes(read_report(self.files.report(report))) == expected
        for project, suffix in entries:
            name = self.wheels[project].filename + suffix
            assert any(f"{name}: bad-body, refetched" in line for line in block), block
            assert self.index.counts().get(("GET", f"/files/{name}")) == 1, self.index.counts()

    def silent_again(self, projects: list[str]) -> None:
        """The next run says nothing and downloads nothing: the fresh copies are in the cache."""
        self.index.reset_log()
        result = pip_download(self.venv, self.cache_dir, self.index, projects, self.files.env())
        assert_clean_exit(result)
        assert result.stderr == "", describe(result)
        assert self.index.count("/files/") == 0, self.index.counts()


@pytest.fixture
def scene_for(
    make_venv: VenvFactory,
    tmp_path: Path,
    body_index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> Callable[[str], Scene]:
    def build(pip: str) -> Scene:
        venv = make_venv(find_python(PYTHON_OF.get(pip, "3.11")), pip, guard=True)
        return Scene(venv, tmp_path, body_index, guardtest_wheels)

    return build


def installed_payload(target: Path, project: str) -> bytes:
    return (target / project.replace("-", "_") / "payload.bin").read_bytes()


def original_payload(wheel: BuiltWheel) -> bytes:
    with zipfile.ZipFile(wheel.path) as archive:
        return archive.read(f"{wheel.project.replace('-', '_')}/payload.bin")


def download_install_wheel(scene: Scene, rotted: dict[str, list[tuple[str, str]]]) -> None:
    """Three projects whose cached files were rotted: download, install, wheel, each healed."""
    download, install, wheel = rotted
    out = scene.root / "out"
    result = scene.pip(["download", "--no-deps", "-d", str(out / "d"), download], "download")
    scene.healed(result, "download", *rotted[download])
    wanted = scene.wheels[download]
    assert (out / "d" / wanted.filename).read_bytes() == wanted.path.read_bytes()

    target = out / "target"
    result = scene.pip(["install", "--no-deps", "--target", str(target), install], "install")
    scene.healed(result, "install", *rotted[install])
    assert installed_payload(target, install) == original_payload(scene.wheels[install])

    result = scene.pip(["wheel", "--no-deps", "-w", str(out / "w"), wheel], "wheel")
    scene.healed(result, "wheel", *rotted[wheel])
    wanted = scene.wheels[wheel]
    assert (out / "w" / wanted.filename).read_bytes() == wanted.path.read_bytes()
    assert len(scene.files.history_lines()) == 3
    scene.silent_again(list(rotted))


@pytest.mark.e2e
@pytest.mark.parametrize("pip", PIPS)
def test_bit_rot_in_a_cached_wheel_is_fetched_again_in_the_same_run(
    pip: str, scene_for: Callable[[str], Scene]
) -> None:
    scene = scene_for(pip)
    rotted = {p: [(p, "")] for p in ("guardtest-alpha", "guardtest-bravo", "guardtest-charlie")}
    scene.fill(list(rotted))
    for project in rotted:
        scene.rot(project)
    scene.index.reset_log()
    download_install_wheel(scene, rotted)

    doctor = run_python(scene.venv, ["-m", "pip_cache_guard", "doctor", "--json"])
    points = json.loads(doctor.stdout)["healing_points"]
    for module in BODY_MODULES:  # every pip has each shape: doctor names what was patched
        assert not points[module].startswith(("unsupported", "not patched")), points


@pytest.mark.e2e
@pytest.mark.parametrize("pip", BATCH_PIPS)
def test_bit_rot_on_the_batch_path_metadata_first(
    pip: str, scene_for: Callable[[str], Scene]
) -> None:
    scene = scene_for(pip)
    scene.index.metadata_files = True
    rotted = {
        "guardtest-delta": [("guardtest-delta", ".metadata"), ("guardtest-delta", "")],
        "guardtest-echo": [("guardtest-echo", "")],
        "guardtest-foxtrot": [("guardtest-foxtrot", "")],
    }
    scene.fill(list(rotted))
    assert scene.index.count("/files/guardtest_delta-1.0-py3-none-any.whl.metadata") == 1
    for entries in rotted.values():
        for entry in entries:
            scene.rot(*entry)
    scene.index.reset_log()
    download_install_wheel(scene, rotted)


@pytest.mark.e2e
@pytest.mark.parametrize("pip", PIPS)
def test_a_cached_archive_that_cannot_be_read_without_a_hash_is_fetched_again(
    pip: str, scene_for: Callable[[str], Scene], sdist: BuiltWheel
) -> None:
    """No hash to check: bravo's payload fails its CRC while installing, charlie's zip directory
    cannot be found when pip reads its metadata, golf's sdist is not a gzip file; all three are
    fetched again in the same run."""
    scene = scene_for(pip)
    scene.index.hashes = False
    bravo, charlie = "guardtest-bravo", "guardtest-charlie"
    scene.fill([bravo, charlie, SDIST_PROJECT])
    scene.rot(bravo)
    scene.rot(charlie, at=1 - 6 / scene.wheels[charlie].size)  # the central directory's offset
    sdist_url = scene.index.file_url(sdist.filename)
    sdist_entry = cache.entry_path(scene.cache_dir, sdist_url, legacy=scene.legacy)
    # The gzip header: a byte rotted in stored (incompressible) data would pass unnoticed, as
    # tarfile stops before the gzip trailer's CRC (README: out of reach).
    cache.flip_body_byte(sdist_entry, legacy=scene.legacy, at=0)
    scene.index.reset_log()
    target = scene.root / "target"

    result = scene.pip(
        ["install", "--no-deps", "-t", str(target), bravo, charlie, SDIST_PROJECT], "install"
    )

    assert_clean_exit(result)
    summary_block(result.stderr)
    expected = {
        cache.cache_key(url): ("bad-body", "refetched")
        for url in (scene.url(bravo), scene.url(charlie), sdist_url)
    }
    assert outcomes(read_report(scene.files.report("install"))) == expected
    for project in (bravo, charlie):
        assert installed_payload(target, project) == original_payload(scene.wheels[project])
    built = target / SDIST_PROJECT.replace("-", "_") / "__init__.py"
    assert built.read_bytes() == b"BUILT_FROM_SDIST = True\n"
    for url in (scene.url(bravo), scene.url(charlie), sdist_url):  # once each, fetched again
        assert scene.index.counts().get(("GET", urlsplit(url).path)) == 1, scene.index.counts()
    scene.silent_again([bravo, charlie, SDIST_PROJECT])


@pytest.mark.e2e
@pytest.mark.parametrize("pip", ["26.3", "23.2.1", "21.3.1"])
def test_a_file_the_index_serves_wrong_still_fails_after_exactly_one_more_download(
    pip: str, scene_for: Callable[[str], Scene]
) -> None:
    scene = scene_for(pip)
    project = "guardtest-alpha"
    scene.fill([project])
    scene.rot(project)
    scene.index.substitute(scene.wheels[project].filename, b"not the file the link's hash names")
    scene.index.reset_log()

    result = scene.pip(["download", "--no-deps", "-d", str(scene.root / "d"), project], "bad")

    assert result.returncode == 1, describe(result)
    assert HASH_ERROR in result.stderr, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    assert scene.index.count("/files/") == 1, scene.index.counts()
    block = summary_block(result.stderr)
    assert "the cache was not the cause" in block[0], block
    report = read_report(scene.files.report("bad"))
    assert outcomes(report) == {
        cache.cache_key(scene.url(project)): ("index-mismatch", "refetched")
    }


@pytest.mark.e2e
@pytest.mark.parametrize("pip", ["26.3", "21.3.1"])
def test_an_index_down_during_the_refetch_gives_pips_own_error(
    pip: str, scene_for: Callable[[str], Scene]
) -> None:
    """pip's own words for a file the index cannot serve (what it says on a cold cache too);
    the damaged entry stays deleted, and the next run fetches the file."""
    scene = scene_for(pip)
    project = "guardtest-bravo"
    scene.fill([project])
    scene.rot(project)
    scene.index.files_down = True
    target = str(scene.root / "target")

    result = scene.pip(["install", "--no-deps", "--retries", "0", "-t", target, project], "down")

    assert result.returncode == 1, describe(result)
    assert "Could not install packages due to an OSError" in result.stderr, describe(result)
    assert "503" in result.stderr and "Traceback" not in result.stderr, describe(result)
    assert not scene.entry(project).exists()
    report = read_report(scene.files.report("down"))
    assert outcomes(report) == {cache.cache_key(scene.url(project)): ("bad-body", "deleted")}
    scene.index.files_down = False
    again = scene.pip(["install", "--no-deps", "-t", target, "--upgrade", project], "up")
    assert_clean_exit(again)
    assert again.stderr == "", describe(again)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("algorithm", "json_pages"),
    [("sha256", False), ("sha512", False), ("sha512", True)],
    ids=["sha256", "sha512", "sha512-json-page"],
)
def test_a_stale_hash_in_a_requirements_file_is_not_blamed_on_the_cache(
    scene_for: Callable[[str], Scene], algorithm: str, json_pages: bool
) -> None:
    """The cached copy has the hash its link (or the JSON page) names: only the requirements
    file differs, so pip's error stands at once: no download, nothing deleted, nothing said by
    the guard. With a sha512 in the file pip computes no sha256; the link's hash decides all
    the same."""
    scene = scene_for("26.3")
    scene.index.json_pages = json_pages
    project = "guardtest-alpha"
    scene.fill([project])
    entry = scene.entry(project)
    before = cache.stored_body(entry)
    requirements = scene.root / "requirements.txt"
    wrong = "0" * (128 if algorithm == "sha512" else 64)
    requirements.write_text(f"{project}==1.0 --hash={algorithm}:{wrong}\n")
    scene.index.reset_log()

    download = ["download", "--no-deps", "--require-hashes", "-d", str(scene.root / "d")]
    result = scene.pip([*download, "-r", str(requirements)], "stale")

    assert result.returncode == 1, describe(result)
    assert HASH_ERROR in result.stderr and "Traceback" not in result.stderr, describe(result)
    assert "pip-cache-guard" not in result.stderr, describe(result)
    assert scene.index.count("/files/") == 0, scene.index.counts()
    assert cache.stored_body(entry) == before
    assert read_report(scene.files.report("stale"))["events"] == []


def pips_words(stderr: str) -> str:
    """pip's stderr without the names of its temporary directories, which differ per run."""
    return re.sub(r"/pip-[a-z-]+-[a-z0-9_]{8}/", "/pip-tmp/", stderr)


@pytest.mark.e2e
@pytest.mark.parametrize("hashes", [True, False], ids=["link-hash", "no-hash"])
def test_an_sdist_pip_refuses_for_a_policy_reason_is_neither_evicted_nor_blamed(
    scene_for: Callable[[str], Scene], policy_sdist: Path, hashes: bool
) -> None:
    """pip's tarfile data filter refuses a member linking to an absolute path (pip raises
    InstallationError from the filter's TarError): the archive was read through, so it is not
    damaged, hash or no hash. The cached file stays, nothing is fetched again, and pip's own
    error reaches the user exactly as without the guard."""
    scene = scene_for("26.3")
    scene.index.hashes = hashes
    url = scene.index.file_url(policy_sdist.name)
    entry = cache.entry_path(scene.cache_dir, url)

    def download(name: str, **env: str) -> subprocess.CompletedProcess[str]:
        args = ["download", "--no-deps", "-d", str(scene.root / name), POLICY_PROJECT]
        return run_pip(scene.venv, args, scene.cache_dir, scene.index, scene.files.env(name, **env))

    first = download("fill")  # from the index: pip refuses it already, and caches it
    assert first.returncode == 1 and POLICY_ERROR in first.stderr, describe(first)
    before = cache.stored_body(entry)
    assert before == policy_sdist.read_bytes()
    unguarded = download("unguarded", PIP_CACHE_GUARD="0")
    scene.index.reset_log()

    result = download("cached")

    assert result.returncode == 1, describe(result)
    assert pips_words(result.stderr) == pips_words(unguarded.stderr), describe(result)
    assert POLICY_ERROR in result.stderr and "Traceback" not in result.stderr, describe(result)
    assert scene.index.count("/files/") == 0, scene.index.counts()
    assert cache.stored_body(entry) == before
    assert read_report(scene.files.report("cached"))["events"] == []
    assert scene.files.history_lines() == []
