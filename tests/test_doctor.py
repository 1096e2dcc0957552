"""Which startup file ``doctor`` names: the one site.py of that Python acts on (PEP 829).

3.18 cannot run here yet, so the rule is checked on real files for each version it names;
``tests/test_startup_e2e.py`` checks it through ``doctor`` on every interpreter that exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pip_cache_guard.doctor import HOOK_FILE, START_FILE, startup_file


@pytest.mark.parametrize(
    ("python", "present", "expected"),
    [
        ((3, 9), [HOOK_FILE], HOOK_FILE),
        ((3, 14), [HOOK_FILE, START_FILE], HOOK_FILE),  # .start files mean nothing before 3.15
        ((3, 15), [HOOK_FILE], HOOK_FILE),
        ((3, 15), [HOOK_FILE, START_FILE], START_FILE),  # it silences the .pth's import line
        ((3, 17), [START_FILE], START_FILE),
        ((3, 18), [HOOK_FILE], None),  # import lines ignored: nothing runs the hook
        ((3, 18), [HOOK_FILE, START_FILE], START_FILE),
        ((3, 15), [], None),
    ],
)
def test_doctor_names_the_startup_file_site_acts_on(
    tmp_path: Path, python: tuple[int, int], present: list[str], expected: str | None
) -> None:
    for name in present:
        (tmp_path / name).write_text("")

    found = startup_file(str(tmp_path), python)

    assert found == (str(tmp_path / expected) if expected else None)
