"""Whatever the cloud sends, parsing raises nothing but HueResponseError."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.hpoll.hue import HueResponseError, Snapshot, parse_snapshot
from tests.conftest import load_resources

RESOURCES = load_resources()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["1970-01-01T00:00:00.000Z", "9999-12-31T23:59:59Z", "device", "motion"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _mutate(node: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Replace, delete or add one thing somewhere below ``node``."""
    if isinstance(node, dict) and node and depth < 6:
        key = data.draw(st.sampled_from(sorted(node)))
        action = data.draw(st.sampled_from(["descend", "replace", "delete", "add"]))
        if action == "descend":
            node[key] = _mutate(node[key], data, depth + 1)
        elif action == "replace":
            node[key] = data.draw(json_values)
        elif action == "delete":
            del node[key]
        else:
            node[data.draw(st.text(max_size=10))] = data.draw(json_values)
        return node
    if isinstance(node, list) and node and depth < 6:
        index = data.draw(st.integers(0, len(node) - 1))
        node[index] = _mutate(node[index], data, depth + 1)
        return node
    return data.draw(json_values)


def _parse(payload: object) -> None:
    with contextlib.suppress(HueResponseError):
        assert isinstance(parse_snapshot(payload), Snapshot)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), mutations=st.integers(1, 8))
def test_mutated_resources_never_crash(data: st.DataObject, mutations: int) -> None:
    resources = copy.deepcopy(RESOURCES)
    for _ in range(mutations):
        index = data.draw(st.integers(0, len(resources) - 1))
        resources[index] = _mutate(resources[index], data)
    _parse({"errors": [], "data": resources})


@settings(max_examples=200, deadline=None)
@given(payload=json_values)
def test_arbitrary_json_never_crashes(payload: object) -> None:
    _parse(payload)
    _parse({"errors": [], "data": payload})
    _parse({"errors": [], "data": [payload]})
