"""What HACS and hassfest would check, written out (neither runs offline).

Sources: HACS's hacs.json schema (publish/start) and integration requirements, and hassfest's
manifest rules (key order, allowed iot_class/integration_type values, version for custom
integrations) from the HA developer docs.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION
from PIL import Image
import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "hpoll"

HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "persistent_directory",
    "render_readme",
    "hacs",
}
IOT_CLASSES = {
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
}
INTEGRATION_TYPES = {
    "device",
    "entity",
    "hardware",
    "helper",
    "hub",
    "service",
    "system",
    "virtual",
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((INTEGRATION / "manifest.json").read_text())
    return data


@pytest.fixture(scope="module")
def hacs() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "hacs.json").read_text())
    return data


def test_hacs_json_uses_only_known_keys(hacs: dict[str, Any]) -> None:
    assert set(hacs) <= HACS_KEYS, set(hacs) - HACS_KEYS
    assert isinstance(hacs["name"], str)
    assert hacs["name"]
    assert hacs.get("render_readme") is True


def test_hacs_minimum_ha_is_what_the_tests_run_against(hacs: dict[str, Any]) -> None:
    """The declared minimum must be a version this suite really exercises."""
    assert AwesomeVersion(hacs["homeassistant"]) == AwesomeVersion(HA_VERSION)


def test_single_integration_in_custom_components() -> None:
    folders = [
        p.name
        for p in (ROOT / "custom_components").iterdir()
        if p.is_dir() and p.name != "__pycache__"
    ]
    assert folders == ["hpoll"]
    assert (ROOT / "README.md").is_file()


def test_manifest_has_every_key_hacs_and_hassfest_want(manifest: dict[str, Any]) -> None:
    assert manifest["domain"] == INTEGRATION.name
    assert re.fullmatch(r"[a-z0-9_]+", manifest["domain"])
    for key in ("name", "documentation", "issue_tracker", "version"):
        assert isinstance(manifest[key], str)
        assert manifest[key]
    assert manifest["documentation"].startswith("https://")
    assert manifest["issue_tracker"].startswith("https://")
    assert all(owner.startswith("@") for owner in manifest["codeowners"])
    assert manifest["codeowners"]
    assert manifest["config_flow"] is True
    assert manifest["dependencies"] == ["application_credentials"]
    assert manifest["iot_class"] == "cloud_polling"
    assert manifest["iot_class"] in IOT_CLASSES
    assert manifest["integration_type"] == "hub"
    assert manifest["integration_type"] in INTEGRATION_TYPES
    assert manifest["requirements"] == []
    assert AwesomeVersion(manifest["version"]).valid


def test_manifest_key_order(manifest: dict[str, Any]) -> None:
    """hassfest: domain, name, then the rest alphabetically."""
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_manifest_version_matches_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert version is not None
    assert json.loads((INTEGRATION / "manifest.json").read_text())["version"] == version[1]


@pytest.mark.parametrize(
    ("name", "square", "shortest"),
    [
        ("icon.png", True, 256),
        ("icon@2x.png", True, 512),
        ("logo.png", False, 128),
        ("logo@2x.png", False, 256),
    ],
)
def test_brand_images(name: str, square: bool, shortest: int) -> None:
    """HA's brand rules: PNG, icons square 256 (512 @2x), logos 128-256 px on the short side."""
    with Image.open(INTEGRATION / "brand" / name) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        width, height = image.size
        assert min(width, height) == shortest
        assert (width == height) is square
        # Transparent corners: the tile is rounded, as brand images should be trimmed.
        assert image.getpixel((0, 0))[3] == 0
