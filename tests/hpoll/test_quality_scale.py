"""quality_scale.yaml tells the truth about the tier and the files it relies on."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.util.yaml import load_yaml

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "hpoll"

PLATINUM_RULES = {
    "action-setup",
    "appropriate-polling",
    "brands",
    "common-modules",
    "config-flow-test-coverage",
    "config-flow",
    "dependency-transparency",
    "docs-actions",
    "docs-high-level-description",
    "docs-installation-instructions",
    "docs-removal-instructions",
    "entity-event-setup",
    "entity-unique-id",
    "has-entity-name",
    "runtime-data",
    "test-before-configure",
    "test-before-setup",
    "unique-config-entry",
    "action-exceptions",
    "config-entry-unloading",
    "docs-configuration-parameters",
    "docs-installation-parameters",
    "entity-unavailable",
    "integration-owner",
    "log-when-unavailable",
    "parallel-updates",
    "reauthentication-flow",
    "test-coverage",
    "devices",
    "diagnostics",
    "discovery-update-info",
    "discovery",
    "docs-data-update",
    "docs-examples",
    "docs-known-limitations",
    "docs-supported-devices",
    "docs-supported-functions",
    "docs-troubleshooting",
    "docs-use-cases",
    "dynamic-devices",
    "entity-category",
    "entity-device-class",
    "entity-disabled-by-default",
    "entity-translations",
    "exception-translations",
    "icon-translations",
    "reconfiguration-flow",
    "repair-issues",
    "stale-devices",
    "async-dependency",
    "inject-websession",
    "strict-typing",
}


def test_every_rule_is_done_or_exempt_with_a_reason() -> None:
    rules = load_yaml(INTEGRATION / "quality_scale.yaml")["rules"]  # type: ignore[index]
    assert set(rules) == PLATINUM_RULES
    for name, status in rules.items():
        if isinstance(status, dict):
            assert status["status"] == "exempt", name
            assert status["comment"].strip(), name
        else:
            assert status == "done", name


def test_claims_match_the_code() -> None:
    for module in ("binary_sensor.py", "sensor.py", "event.py"):
        assert "PARALLEL_UPDATES = 0" in (INTEGRATION / module).read_text()
    for required in ("coordinator.py", "entity.py", "diagnostics.py", "icons.json"):
        assert (INTEGRATION / required).is_file()
    strings = json.loads((INTEGRATION / "strings.json").read_text())
    assert strings == json.loads((INTEGRATION / "translations" / "en.json").read_text())
    assert {"reauth_confirm", "reconfigure", "link"} <= set(strings["config"]["step"])
    assert strings["exceptions"]
    assert strings["issues"]["bridge_offline"]


def test_every_translation_key_in_code_has_strings() -> None:
    strings = json.loads((INTEGRATION / "strings.json").read_text())
    code = "".join(p.read_text() for p in INTEGRATION.glob("*.py"))
    for key in strings["exceptions"]:
        assert f'"{key}"' in code, key
    for platform, entities in strings["entity"].items():
        for key in entities:
            assert f'"{key}"' in code, f"{platform}.{key}"
