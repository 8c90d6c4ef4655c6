"""quality_scale.yaml's claims match the code. (That it names every rule of the installed Home
Assistant, each done or exempt with a reason, is scripts/validate_integration.py's check.)"""

from __future__ import annotations

import json
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "hpoll"


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
