"""Packaging facts beyond hassfest's and HACS's own rules (those are
scripts/validate_integration.py's): the versions declared are the ones tested and shipped."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION
import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "hpoll"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((INTEGRATION / "manifest.json").read_text())
    return data


@pytest.fixture(scope="module")
def hacs() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "hacs.json").read_text())
    return data


def test_hacs_minimum_ha_is_what_the_tests_run_against(hacs: dict[str, Any]) -> None:
    """The declared minimum must be a version this suite really exercises."""
    assert AwesomeVersion(hacs["homeassistant"]) == AwesomeVersion(HA_VERSION)


def test_manifest_version_matches_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert version is not None
    assert json.loads((INTEGRATION / "manifest.json").read_text())["version"] == version[1]


def test_dependencies_are_transparent(manifest: dict[str, Any]) -> None:
    """dependency-transparency: no requirements (the Hue client ships in hue/); OAuth through
    application credentials."""
    assert manifest["requirements"] == []
    assert manifest["dependencies"] == ["application_credentials"]
    assert manifest["iot_class"] == "cloud_polling"
