"""README is the front page and links into docs/; those links must land.

``mkdocs build --strict`` in ``.ci/run`` checks the links between docs pages, but not README's,
which the forge renders on its own: a moved page or a renamed heading would break them silently.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
# [text](target): a relative target, not a URL with a scheme, not an in-page #anchor.
LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#)([^)\s]+)\)")


def _slug(heading: str) -> str:
    """Python-Markdown's default heading id (the one MkDocs and the forge both give here)."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(match) for match in re.findall(r"^#+ (.+)$", text, re.M)}


def _readme_links() -> list[str]:
    return LINK.findall(README.read_text(encoding="utf-8"))


def test_readme_links_into_every_docs_page() -> None:
    linked = {(REPO_ROOT / link.split("#")[0]).resolve() for link in _readme_links()}
    pages = set((REPO_ROOT / "docs").glob("*.md"))
    assert pages, "docs/ holds no page"
    assert {page.resolve() for page in pages} <= linked


@pytest.mark.parametrize("link", _readme_links())
def test_readme_link_lands(link: str) -> None:
    path, _, anchor = link.partition("#")
    target = REPO_ROOT / path
    assert target.exists(), f"README links to {link}, which does not exist"
    if anchor:
        assert anchor in _anchors(target), f"{path} has no heading for #{anchor}"


def test_readme_stays_a_front_page() -> None:
    assert len(README.read_text(encoding="utf-8")) < 12_000


def test_ci_runs_the_test_command_readme_gives() -> None:
    ci = REPO_ROOT / ".ci" / "run"
    if not ci.exists():
        pytest.skip(".ci/run is not in the sdist")
    text = README.read_text(encoding="utf-8")
    command = text.split("## Run the tests", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert command.strip() in ci.read_text(encoding="utf-8").splitlines()
