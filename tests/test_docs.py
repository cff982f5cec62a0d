"""The pictures README.md and docs/ show exist (``make screenshots`` rewrites them), and every
picture under docs/screenshots/ is shown somewhere, so a renamed journey step leaves no stale file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")


def _shown() -> set[Path]:
    shown = set()
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in IMAGE.findall(page.read_text()):
            image = (page.parent / target).resolve()
            assert image.is_file(), f"{page.relative_to(ROOT)} shows {target}, which does not exist"
            shown.add(image)
    return shown


def test_every_picture_in_the_docs_exists_and_every_screenshot_is_shown():
    shown = _shown()
    screenshots = {path.resolve() for path in (ROOT / "docs" / "screenshots").glob("*.png")}
    assert screenshots, "docs/screenshots/ is empty: run make screenshots"
    unshown = sorted(path.name for path in screenshots - shown)
    assert not unshown, f"screenshots no page shows (rename in docs/journeys.md or delete): {unshown}"


# -- docs/configuration.md covers what the settings read --------------------------------------------
CONFIGURATION = ROOT / "docs" / "configuration.md"
# Every way huntaze/settings.py reads a variable: env("X"), env.int("X"), env_list("X"), os.environ["X"],
# os.environ.get("X").
ENV_READ = re.compile(r'(?:\benv(?:\.\w+)?|\benv_\w+|os\.environ(?:\.get)?)\s*[\(\[]\s*"([A-Z][A-Z0-9_]+)"')


def test_every_environment_variable_the_settings_read_is_documented():
    """An operator reads docs/configuration.md, not settings.py: a variable missing there is a
    setting nobody knows they can change (or must, in production)."""
    settings_source = (ROOT / "huntaze" / "settings.py").read_text()
    read = set(ENV_READ.findall(settings_source))
    assert len(read) > 100, "the pattern no longer finds the settings' reads"
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", CONFIGURATION.read_text()))
    assert sorted(read - documented) == []


def test_every_beat_entry_is_in_the_beat_table():
    """The beat table in docs/configuration.md is what an operator checks in the admin's
    "Periodic tasks" against; an entry missing there looks like something someone added by hand."""
    from django.conf import settings

    table = CONFIGURATION.read_text().split("### Beat", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.MULTILINE))
    assert sorted(set(settings.CELERY_BEAT_SCHEDULE) - listed) == []
    assert sorted(listed - set(settings.CELERY_BEAT_SCHEDULE)) == []
