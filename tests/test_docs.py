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
