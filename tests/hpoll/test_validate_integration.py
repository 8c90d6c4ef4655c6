"""The offline hassfest/HACS check passes on this repository and catches each defect it is for."""

from __future__ import annotations

from collections.abc import Callable
import importlib.util
import json
from pathlib import Path
import shutil
from types import ModuleType

from PIL import Image
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "validate_integration", ROOT / "scripts" / "validate_integration.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validate = _load()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of what the validators look at."""
    shutil.copytree(
        ROOT / "custom_components",
        tmp_path / "custom_components",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in ("hacs.json", "README.md", "LICENSE", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _edit_strings(repo: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    integration = repo / "custom_components" / "hpoll"
    _edit_json(integration / "strings.json", change)
    shutil.copy(integration / "strings.json", integration / "translations" / "en.json")


def test_this_repository_passes() -> None:
    assert validate.problems(ROOT) == []


def test_the_rule_list_is_the_installed_home_assistants() -> None:
    assert validate.installed_rule_names() == validate.ALL_RULES
    assert {"docs-conditions", "docs-triggers"} <= validate.ALL_RULES


def _set(path: tuple[str, ...], value: object) -> Callable[[dict], None]:  # type: ignore[type-arg]
    def change(data: dict) -> None:  # type: ignore[type-arg]
        for key in path[:-1]:
            data = data.setdefault(key, {})
        data[path[-1]] = value

    return change


STRING_DEFECTS = {
    "no URLs": _set(
        ("options", "step", "relay", "data_description", "relay_url"), "See https://example.org"
    ),
    "no HTML": _set(("issues", "bridge_offline", "title"), "<b>{bridge}</b> is down"),
    "not in data": _set(("options", "step", "relay", "data_description", "nope"), "Nope."),
    "invalid translation key": _set(("entity", "sensor", "Last_Activity"), {"name": "X"}),
    "placeholders are not allowed": _set(
        ("entity", "sensor", "zigbee_status", "state", "connected"), "Connected to {hub}"
    ),
    "leading or trailing spaces": _set(("config", "abort", "already_configured"), " Done. "),
    "single quotes": _set(("config", "abort", "already_configured"), "Bridge '{bridge}' done."),
    "either a description or a fix_flow": _set(("issues", "nothing"), {"title": "Title"}),
}


@pytest.mark.parametrize("expected", sorted(STRING_DEFECTS))
def test_translation_rules(repo: Path, expected: str) -> None:
    _edit_strings(repo, STRING_DEFECTS[expected])
    assert any(expected in problem for problem in validate.problems(repo))


def test_english_must_equal_strings(repo: Path) -> None:
    _edit_json(
        repo / "custom_components" / "hpoll" / "translations" / "en.json",
        _set(("config", "abort", "already_configured"), "Something else."),
    )
    assert any("en.json" in p for p in validate.problems(repo))


def test_manifest_rules(repo: Path) -> None:
    manifest = repo / "custom_components" / "hpoll" / "manifest.json"
    data = json.loads(manifest.read_text())
    data = {"name": data.pop("name"), **data, "homepage": "x", "iot_class": "polling"}
    del data["version"]
    manifest.write_text(json.dumps(data))
    found = "\n".join(validate.problems(repo))
    for expected in ("alphabetical order", "unknown key 'homepage'", "iot_class", "'version'"):
        assert expected in found


@pytest.mark.parametrize(
    ("rule", "status", "expected"),
    [
        ("docs-triggers", None, "is missing"),
        ("docs-conditions", "todo", "not Platinum"),
        ("discovery", "exempt", "needs a comment"),
        ("made-up-rule", "done", "unknown rule"),
    ],
)
def test_quality_scale_rules(repo: Path, rule: str, status: str | None, expected: str) -> None:
    path = repo / "custom_components" / "hpoll" / "quality_scale.yaml"
    lines = path.read_text().splitlines()
    kept = []
    skipping = False
    for line in lines:
        if line.startswith(f"  {rule}:"):
            skipping = True
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        kept.append(line)
    if status is not None:
        kept.append(f"  {rule}: {status}")
    path.write_text("\n".join(kept) + "\n")
    assert any(expected in p for p in validate.problems(repo))


def test_hacs_rules(repo: Path) -> None:
    (repo / "LICENSE").unlink()
    _edit_json(repo / "hacs.json", _set(("domains",), ["sensor"]))
    found = "\n".join(validate.problems(repo))
    assert "LICENSE is missing" in found
    assert "unknown key 'domains'" in found


def test_the_licence_must_be_the_declared_one(repo: Path) -> None:
    (repo / "LICENSE").write_text("MIT License\n\nCopyright (c) 2026\n")
    assert any("Apache-2.0" in p or "apache-2.0" in p for p in validate.problems(repo))


def test_brand_images(repo: Path) -> None:
    Image.new("RGBA", (300, 300)).save(repo / "custom_components" / "hpoll" / "brand" / "icon.png")
    assert any("brand/icon.png" in p for p in validate.problems(repo))


ICON_DEFECTS = {
    "start with mdi:": _set(("entity", "sensor", "relay_queue", "default"), "tray-full"),
    "invalid translation key": _set(("entity", "sensor", "Relay_Queue"), {"default": "mdi:tray"}),
    "unknown key": _set(("entity", "sensor", "relay_queue", "colour"), "red"),
    "unknown top-level key": _set(("entities",), {}),
    "invalid state key": _set(
        ("entity", "binary_sensor", "motion", "state", "On"), "mdi:motion-sensor"
    ),
}


@pytest.mark.parametrize("expected", sorted(ICON_DEFECTS))
def test_icon_rules(repo: Path, expected: str) -> None:
    _edit_json(repo / "custom_components" / "hpoll" / "icons.json", ICON_DEFECTS[expected])
    assert any(p.startswith("icons.json") and expected in p for p in validate.problems(repo))
