"""Offline check of the rules hassfest and the HACS action apply to this repository.

Neither tool can be fetched here, so the rules that apply to a custom integration were read from
their sources (home-assistant/core ``script/hassfest/`` manifest, translations, icons,
quality_scale; hacs/integration ``custom_components/hacs/validate/`` and ``utils/validate.py``)
and are written out below in our own words. What needs the network (the brands repository,
GitHub topics and description, an archived repository) is not checked.

    python scripts/validate_integration.py [REPOSITORY_ROOT]

prints one line per problem and exits 1 if there is any. ``scripts/test`` runs it, and
tests/hpoll/test_validate_integration.py proves each rule catches the defect it is for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
import json
from pathlib import Path
import re
import string
import sys
from typing import Any

from awesomeversion import AwesomeVersion
import homeassistant
from homeassistant.util.yaml import load_yaml_dict
from PIL import Image

# -- hassfest: manifest.json ---------------------------------------------------------------------

#: Keys hassfest's manifest schema knows (for custom integrations, with "version").
MANIFEST_KEYS = frozenset(
    {
        "domain",
        "name",
        "after_dependencies",
        "bluetooth",
        "codeowners",
        "config_flow",
        "dependencies",
        "dhcp",
        "disabled",
        "documentation",
        "homekit",
        "import_executor",
        "integration_type",
        "iot_class",
        "issue_tracker",
        "loggers",
        "mqtt",
        "quality_scale",
        "requirements",
        "single_config_entry",
        "ssdp",
        "usb",
        "version",
        "zeroconf",
    }
)
IOT_CLASSES = frozenset(
    {"assumed_state", "calculated", "cloud_polling", "cloud_push", "local_polling", "local_push"}
)
INTEGRATION_TYPES = frozenset(
    {"device", "entity", "hardware", "helper", "hub", "service", "system", "virtual"}
)

# -- hassfest: translations ----------------------------------------------------------------------

#: Keys of entities, states, selector options ...: lower case, digits, "-" and "_", not at the
#: ends, never doubled.
TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")
#: hassfest refuses URLs in strings: they go in description placeholders.
URL = re.compile(
    r"(((ftp|ftps|scp|http|https|mqtt|mqtts|socket|socks5)://|www\.)"
    r"[a-z0-9]+([-.][a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(/.*)?)",
    re.IGNORECASE,
)
HTML = re.compile(r"<[a-z/!][^>]*>", re.IGNORECASE)
QUOTED_PLACEHOLDER = re.compile(r"'\{\w+\}'")
COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
TOP_LEVEL_STRINGS = frozenset(
    {
        "title",
        "config",
        "config_subentries",
        "options",
        "preview_features",
        "selector",
        "device_automation",
        "system_health",
        "config_panel",
        "application_credentials",
        "issues",
        "entity_component",
        "device",
        "entity",
        "exceptions",
        "services",
        "conditions",
        "triggers",
        "conversation",
        "common",
    }
)
FLOW_KEYS = frozenset({"flow_title", "step", "error", "abort", "progress", "create_entry"})
STEP_KEYS = frozenset(
    {
        "title",
        "description",
        "data",
        "data_description",
        "menu_options",
        "menu_option_descriptions",
        "submit",
        "sections",
    }
)
ENTITY_KEYS = frozenset({"name", "state", "state_attributes", "unit_of_measurement"})

# -- hassfest: icons.json ------------------------------------------------------------------------

ICON_TOP_LEVEL = frozenset({"entity", "services", "conditions", "triggers"})
ENTITY_ICON_KEYS = frozenset({"default", "state", "state_attributes", "range"})

# -- hassfest: quality_scale.yaml ----------------------------------------------------------------

#: The rules by tier, as hassfest's quality_scale.py lists them (the ONE place this repository
#: keeps them). check_rule_list() compares the names with what the installed Home Assistant's own
#: integrations list, so a rule added upstream fails the check once HA is upgraded.
QUALITY_SCALE_RULES: Mapping[str, tuple[str, ...]] = {
    "bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
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
    ),
    "gold": (
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
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
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}
ALL_RULES = frozenset(rule for rules in QUALITY_SCALE_RULES.values() for rule in rules)

# -- HACS ----------------------------------------------------------------------------------------

HACS_KEYS = frozenset(
    {
        "name",
        "content_in_root",
        "country",
        "filename",
        "hacs",
        "hide_default_branch",
        "homeassistant",
        "persistent_directory",
        "render_readme",
        "zip_release",
    }
)
#: GitHub's keys of the open-source licences HACS recognises, and how each file begins.
LICENSES = {
    "apache-2.0": "Apache License",
    "mit": "MIT License",
    "gpl-3.0": "GNU GENERAL PUBLIC LICENSE",
    "agpl-3.0": "GNU AFFERO GENERAL PUBLIC LICENSE",
    "lgpl-2.1": "GNU LESSER GENERAL PUBLIC LICENSE",
    "mpl-2.0": "Mozilla Public License",
    "bsd-3-clause": "BSD 3-Clause License",
    "bsd-2-clause": "BSD 2-Clause License",
    "unlicense": "This is free and unencumbered software",
}
#: Brand images a custom integration ships: (file, square, shortest side in pixels).
BRAND_IMAGES = (
    ("icon.png", True, 256),
    ("icon@2x.png", True, 512),
    ("logo.png", False, 128),
    ("logo@2x.png", False, 256),
)

type Check = Callable[[Path], Iterator[str]]


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _integration(root: Path) -> Path:
    folders = sorted(
        p for p in (root / "custom_components").iterdir() if p.is_dir() and p.name != "__pycache__"
    )
    if len(folders) != 1:
        raise SystemExit(f"HACS: expected one integration in custom_components/, found {folders}")
    return folders[0]


def check_manifest(root: Path) -> Iterator[str]:
    """hassfest's manifest rules for a custom integration; HACS's required keys."""
    folder = _integration(root)
    manifest = _json(folder / "manifest.json")
    keys = list(manifest)
    if keys[:2] != ["domain", "name"] or keys[2:] != sorted(keys[2:]):
        yield "manifest.json: keys must be domain, name, then the rest in alphabetical order"
    for key in sorted(set(keys) - MANIFEST_KEYS):
        yield f"manifest.json: unknown key {key!r}"
    if manifest.get("domain") != folder.name:
        yield "manifest.json: domain does not match the folder name"
    if not re.fullmatch(r"[a-z0-9_]+", str(manifest.get("domain"))):
        yield "manifest.json: domain must be lower case letters, digits and _"
    core = Path(homeassistant.__file__).parent / "components" / folder.name
    if core.exists():
        yield f"manifest.json: domain {folder.name!r} collides with a core integration"
    for key in ("name", "documentation", "issue_tracker", "version"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            yield f"manifest.json: {key!r} is required"
    for key in ("documentation", "issue_tracker"):
        if not str(manifest.get(key, "")).startswith("https://"):
            yield f"manifest.json: {key} must be an https URL"
    codeowners = manifest.get("codeowners")
    if not isinstance(codeowners, list) or not all(
        isinstance(o, str) and o.startswith("@") for o in codeowners
    ):
        yield "manifest.json: codeowners must be a list of @names"
    if manifest.get("iot_class") not in IOT_CLASSES:
        yield "manifest.json: iot_class is missing or unknown"
    if manifest.get("integration_type", "hub") not in INTEGRATION_TYPES:
        yield "manifest.json: integration_type is unknown"
    for key in ("requirements", "dependencies", "after_dependencies", "loggers"):
        if key in manifest and not all(isinstance(v, str) for v in manifest[key]):
            yield f"manifest.json: {key} must be a list of strings"
    if not AwesomeVersion(str(manifest.get("version"))).valid:
        yield "manifest.json: version is not a valid version"


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, str):
        yield path, value


def _check_value(path: str, text: str, placeholders: bool) -> Iterator[str]:
    if HTML.search(text):
        yield f"{path}: no HTML in translations"
    if QUOTED_PLACEHOLDER.search(text):
        yield f"{path}: no placeholders inside single quotes"
    if COMBINED_REFERENCE.search(text):
        yield f"{path}: no combined references"
    if text != text.strip():
        yield f"{path}: no leading or trailing spaces"
    if URL.search(text):
        yield f"{path}: no URLs in translations (use a description placeholder)"
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field]
    except ValueError:
        yield f"{path}: unbalanced braces"
        return
    if fields and not placeholders:
        yield f"{path}: placeholders are not allowed here"
    for field in fields:
        if not field.isidentifier():
            yield f"{path}: placeholder {{{field}}} is not an identifier"


def _check_keys(path: str, keys: object) -> Iterator[str]:
    for key in keys if isinstance(keys, dict) else ():
        if not TRANSLATION_KEY.match(key):
            yield f"{path}.{key}: invalid translation key"


def _check_flow(path: str, flow: dict[str, Any]) -> Iterator[str]:
    for key in sorted(set(flow) - FLOW_KEYS):
        yield f"{path}.{key}: unknown key"
    for step_id, step in flow.get("step", {}).items():
        for key in sorted(set(step) - STEP_KEYS):
            yield f"{path}.step.{step_id}.{key}: unknown key"
        for key in step.get("data_description", {}):
            if key not in step.get("data", {}):
                yield f"{path}.step.{step_id}.data_description.{key}: not in data"


def _check_entities(strings: dict[str, Any]) -> Iterator[str]:
    for platform, entities in strings.get("entity", {}).items():
        yield from _check_keys(f"entity.{platform}", entities)
        for key, entity in entities.items():
            where = f"entity.{platform}.{key}"
            for part in sorted(set(entity) - ENTITY_KEYS):
                yield f"{where}.{part}: unknown key"
            yield from _check_keys(f"{where}.state", entity.get("state"))
            yield from _check_keys(f"{where}.state_attributes", entity.get("state_attributes"))
            for name, attribute in entity.get("state_attributes", {}).items():
                states = attribute.get("state")
                yield from _check_keys(f"{where}.state_attributes.{name}.state", states)
            for sub, text in _strings({k: v for k, v in entity.items() if k != "name"}, where):
                yield from _check_value(sub, text, placeholders=False)


def check_translations(root: Path) -> Iterator[str]:
    """hassfest's translation rules; strings.json is what translations/en.json holds."""
    folder = _integration(root)
    strings = _json(folder / "strings.json")
    english = folder / "translations" / "en.json"
    if not english.is_file() or _json(english) != strings:
        yield "translations/en.json must hold exactly what strings.json holds"
    for key in sorted(set(strings) - TOP_LEVEL_STRINGS):
        yield f"strings.json: unknown top-level key {key!r}"
    for flow in ("config", "options"):
        if flow in strings:
            yield from _check_flow(flow, strings[flow])
    for issue_id, issue in strings.get("issues", {}).items():
        if "title" not in issue or ("description" in issue) == ("fix_flow" in issue):
            yield f"issues.{issue_id}: needs a title and either a description or a fix_flow"
    for key in strings.get("exceptions", {}):
        if not re.fullmatch(r"[a-z0-9_]+", key):
            yield f"exceptions.{key}: invalid key"
    for selector in strings.get("selector", {}).values():
        yield from _check_keys("selector.options", selector.get("options"))
    yield from _check_entities(strings)
    for path, text in _strings({k: v for k, v in strings.items() if k != "entity"}, ""):
        yield from _check_value(path, text, placeholders=True)
    for path, text in _strings(strings.get("entity", {}), "entity"):
        if path.endswith(".name"):
            yield from _check_value(path, text, placeholders=path.count(".") == 3)


def _check_icon(path: str, icon: object) -> Iterator[str]:
    if not isinstance(icon, str) or not icon.startswith("mdi:") or HTML.search(icon):
        yield f"{path}: an icon must start with mdi: (Material Design Icons)"


def _check_icon_states(path: str, states: object) -> Iterator[str]:
    for key, icon in states.items() if isinstance(states, dict) else ():
        if not TRANSLATION_KEY.match(key):
            yield f"{path}.{key}: invalid state key"
        yield from _check_icon(f"{path}.{key}", icon)


def check_icons(root: Path) -> Iterator[str]:
    """hassfest's icon rules: entity icons by platform and translation key, each ``mdi:``, with
    states and state attributes under valid keys."""
    path = _integration(root) / "icons.json"
    if not path.is_file():
        return
    icons = _json(path)
    for key in sorted(set(icons) - ICON_TOP_LEVEL):
        yield f"icons.json: unknown top-level key {key!r}"
    for platform, entities in icons.get("entity", {}).items():
        for key, entity in entities.items():
            where = f"icons.json: entity.{platform}.{key}"
            if not TRANSLATION_KEY.match(key):
                yield f"{where}: invalid translation key"
            for part in sorted(set(entity) - ENTITY_ICON_KEYS):
                yield f"{where}.{part}: unknown key"
            if "default" in entity:
                yield from _check_icon(f"{where}.default", entity["default"])
            yield from _check_icon_states(f"{where}.state", entity.get("state"))
            for name, attribute in entity.get("state_attributes", {}).items():
                if not TRANSLATION_KEY.match(name):
                    yield f"{where}.state_attributes.{name}: invalid translation key"
                if "default" in attribute:
                    yield from _check_icon(f"{where}.state_attributes.{name}", attribute["default"])
                yield from _check_icon_states(
                    f"{where}.state_attributes.{name}.state", attribute.get("state")
                )


def installed_rule_names() -> frozenset[str]:
    """The rule names of the installed Home Assistant: every core integration's
    quality_scale.yaml lists all of them (hassfest requires it)."""
    core = Path(homeassistant.__file__).parent / "components"
    names: set[str] = set()
    for path in core.glob("*/quality_scale.yaml"):
        names.update(load_yaml_dict(path).get("rules") or {})
    return frozenset(names)


def check_rule_list(root: Path) -> Iterator[str]:
    """Our copy of hassfest's rule list names exactly the rules the installed HA knows."""
    del root
    installed = installed_rule_names()
    for rule in sorted(installed - ALL_RULES):
        yield f"quality scale: rule {rule!r} is new in this Home Assistant; add it (with its tier)"
    for rule in sorted(ALL_RULES - installed):
        yield f"quality scale: rule {rule!r} is gone from this Home Assistant"


def check_quality_scale(root: Path) -> Iterator[str]:
    """quality_scale.yaml names every rule (hassfest: unknown ones are errors), each done or
    exempt with a reason; a Platinum claim needs every rule of every tier."""
    rules = load_yaml_dict(_integration(root) / "quality_scale.yaml").get("rules") or {}
    for rule in sorted(set(rules) - ALL_RULES):
        yield f"quality_scale.yaml: unknown rule {rule!r}"
    for rule in sorted(ALL_RULES - set(rules)):
        yield f"quality_scale.yaml: rule {rule!r} is missing"
    for rule, entry in rules.items():
        status = entry.get("status") if isinstance(entry, dict) else entry
        comment = str(entry.get("comment", "")) if isinstance(entry, dict) else ""
        if status == "exempt" and not comment.strip():
            yield f"quality_scale.yaml: {rule}: an exemption needs a comment (as a mapping)"
        if status not in {"done", "exempt"}:
            yield f"quality_scale.yaml: {rule} is {status!r}: not Platinum"


def check_hacs(root: Path) -> Iterator[str]:
    """HACS: hacs.json, a README, a recognised open-source LICENSE matching pyproject."""
    hacs = _json(root / "hacs.json")
    for key in sorted(set(hacs) - HACS_KEYS):
        yield f"hacs.json: unknown key {key!r}"
    if not isinstance(hacs.get("name"), str) or not hacs["name"]:
        yield "hacs.json: name is required"
    if hacs.get("zip_release") and not hacs.get("filename"):
        yield "hacs.json: zip_release needs a filename"
    if "homeassistant" in hacs and not AwesomeVersion(str(hacs["homeassistant"])).valid:
        yield "hacs.json: homeassistant is not a version"
    if not (root / "README.md").is_file():
        yield "README.md is missing"
    names = ("LICENSE", "LICENSE.md", "LICENSE.txt")
    license_file = next((root / n for n in names if (root / n).is_file()), None)
    declared = re.search(r'^license = "([^"]+)"', (root / "pyproject.toml").read_text(), re.M)
    key = declared[1].lower() if declared else ""
    if license_file is None:
        yield "LICENSE is missing (HACS requires a recognised open-source licence)"
    elif key not in LICENSES or LICENSES[key] not in license_file.read_text()[:400]:
        yield f"LICENSE does not hold the {key or 'declared'} licence pyproject.toml names"


def check_brand(root: Path) -> Iterator[str]:
    """Brand images shipped with the integration: PNG, sizes as HA's brand rules say."""
    brand = _integration(root) / "brand"
    for name, square, shortest in BRAND_IMAGES:
        path = brand / name
        if not path.is_file():
            yield f"brand/{name} is missing"
            continue
        with Image.open(path) as image:
            width, height = image.size
            shape = "square" if square else "not square"
            if (
                image.format != "PNG"
                or min(width, height) != shortest
                or (width == height) != square
            ):
                yield f"brand/{name}: expected a PNG, {shape}, {shortest} px on its short side"


CHECKS: tuple[Check, ...] = (
    check_manifest,
    check_translations,
    check_icons,
    check_rule_list,
    check_quality_scale,
    check_hacs,
    check_brand,
)


def problems(root: Path) -> list[str]:
    """Everything hassfest's and HACS's rules (as far as they apply offline) find."""
    return [problem for check in CHECKS for problem in check(root)]


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1]).resolve()
    found = problems(root)
    for problem in found:
        print(problem)
    print(f"{len(found)} problem(s) found by the offline hassfest/HACS check", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
