"""Apps import only downward, as the layer table in docs/architecture.md says.

Every ``apps/<app>/**/*.py`` (migrations excluded: they record history, dependencies included) is
read with ``ast``; every ``apps.<other>`` and ``huntaze`` import, at module level or inside a
function, counts. The rules:

- an app imports only its own layer or lower ones;
- no app imports the project package ``huntaze`` (it sits on top and imports them all);
- two feature apps (layer 4) never import each other both ways round;
- an app missing from ``LAYERS`` fails until it is given a layer here and in the docs.

A lower layer that needs a higher one is reached through a hook (core's registry, a setting or a
signal the lower layer sends), never an import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"
PROJECT_PACKAGE = "huntaze"
FEATURES = 4
LAYERS = {
    "core": 0,
    "accounts": 1,
    "ai": 2,
    "safety": 2,
    "notifications": 2,
    "delivery": 3,
    **{
        name: FEATURES
        for name in (
            "studio",
            "messaging",
            "campaigns",
            "optimization",
            "monitoring",
            "integrations",
            "billing",
            "workflows",
            "events",
        )
    },
}


def app_names() -> list[str]:
    return sorted(path.name for path in APPS_DIR.iterdir() if (path / "__init__.py").exists())


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "apps":  # from apps import studio
                found.update(f"apps.{alias.name}" for alias in node.names)
    return found


def app_imports(app: str) -> list[tuple[Path, str]]:
    """(file, module) for every import of the project package or another app, in ``app``."""
    found = []
    for path in sorted((APPS_DIR / app).rglob("*.py")):
        if "migrations" in path.relative_to(APPS_DIR).parts:
            continue
        for module in sorted(imported_modules(path)):
            parts = module.split(".")
            if parts[0] == PROJECT_PACKAGE or (parts[0] == "apps" and len(parts) > 1 and parts[1] != app):
                found.append((path.relative_to(APPS_DIR.parent), module))
    return found


def test_every_app_has_a_layer():
    missing = [app for app in app_names() if app not in LAYERS]
    assert not missing, (
        f"apps/{', apps/'.join(missing)} not in the layer table: give it a layer in LAYERS here and in the "
        "Layers section of docs/architecture.md"
    )


@pytest.mark.parametrize("app", [app for app in app_names() if app in LAYERS])
def test_app_imports_only_its_own_or_lower_layers(app):
    problems = []
    for path, module in app_imports(app):
        parts = module.split(".")
        if parts[0] == PROJECT_PACKAGE:
            problems.append(f"{path}: imports {module} (apps never import the project package)")
        elif parts[1] in LAYERS and LAYERS[parts[1]] > LAYERS[app]:
            problems.append(f"{path}: {app} (layer {LAYERS[app]}) imports {module} (layer {LAYERS[parts[1]]})")
    assert not problems, "\n".join(problems)


def test_feature_apps_never_import_each_other_both_ways():
    edges: dict[str, dict[str, Path]] = {}
    for app in app_names():
        for path, module in app_imports(app):
            parts = module.split(".")
            if parts[0] == "apps":
                edges.setdefault(app, {}).setdefault(parts[1], path)
    circles = [
        f"{a} imports {b} ({where}) and {b} imports {a} ({edges[b][a]})"
        for a, targets in edges.items()
        for b, where in targets.items()
        if a < b and a in edges.get(b, {})
    ]
    assert not circles, "\n".join(circles)


def test_the_checks_see_an_upward_import(tmp_path, monkeypatch):
    """The rules catch what they are meant to: an upward import inside a function, and huntaze."""
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("")
    (tmp_path / "core" / "views.py").write_text(
        "def page():\n    from apps.accounts.models import Agency\n    from huntaze import celery\n"
    )
    (tmp_path / "core" / "migrations").mkdir()
    (tmp_path / "core" / "migrations" / "0001_initial.py").write_text("from apps import studio\n")
    monkeypatch.setattr(f"{__name__}.APPS_DIR", tmp_path)
    assert [module for _, module in app_imports("core")] == ["apps.accounts.models", "huntaze"]
