"""The demo home: the captured bridge, furnished with names a person would give it.

The capture (``tests/fixtures/clip_v2_resources.json``) is anonymised: "Device 25" in "Room 1".
Tests keep using it unchanged. The demo and the live Home Assistant show the same bridge as a
home: rooms named after their Hue archetype ("Kitchen", "Hallway"), devices named after what
they are and where ("Hallway sensor", "Back door"), and the sensors the capture left outside any
room placed in one. Ids, services and states stay exactly as captured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import copy
import random

from .world import Resource, World

#: Room and zone names by id prefix (the capture's archetype is kept).
GROUP_NAMES: dict[str, str] = {
    "2dc387a1": "Kitchen",
    "608c8790": "Laundry",
    "91740fb3": "Pantry",
    "bd9ba88f": "Study",
    "24829e2a": "Porch",
    "977899a0": "Guest room",
    "cb0c3b7b": "Bathroom",
    "76289d92": "Stairs",
    "6fbbf09d": "Bedroom",
    "b9034902": "Hallway",
    "0d8309ef": "Living room",
    "0678cab6": "Upstairs",
    "f05d4eda": "Guest floor",
    "4d0ba1d3": "Cooking",
    "4215adbd": "Garden",
    "75137653": "Entrance",
    "e1373d79": "Kitchen worktop",
    "ef38feff": "Dining",
    "2a6c3bd5": "Bedtime",
    "34a91d8a": "Landing",
}

#: Device names by id prefix, and the room (id prefix) of those the capture left outside one.
DEVICES: dict[str, tuple[str, str | None]] = {
    "f747dba7": ("Bedside lamp left", None),
    "fb657eb4": ("Living room sensor", "0d8309ef"),
    "0bcdac54": ("Hallway spot", None),
    "42be61ac": ("Kitchen window sensor", None),
    "c59ce269": ("Guest room dial", None),
    "51428b4a": ("Living room bloom", "0d8309ef"),
    "514657fc": ("Study camera", None),
    "7b21d2e6": ("Bathroom dial", None),
    "abb87463": ("Bedroom floor lamp", None),
    "04c3a9bd": ("Garden strip", None),
    "5f8180f0": ("Study lamp", None),
    "28a12861": ("Living room ceiling", "0d8309ef"),
    "b1421fef": ("Laundry sensor", "608c8790"),
    "4cff9212": ("Garden pedestal", None),
    "9a47175d": ("Kitchen worktop light", None),
    "bae2cb3c": ("Hue Bridge", None),
    "739ebab0": ("Bedside lamp right", None),
    "1661846f": ("Porch wall light", "24829e2a"),
    "a8210de2": ("Front door dial", "b9034902"),
    "657055ad": ("Living room bulb", None),
    "34955c1c": ("Landing switch", "76289d92"),
    "0c8e502b": ("Bedside dial", None),
    "23b03bd1": ("Kitchen dial", None),
    "c04b7bc8": ("Spare dial", None),
    "fc8a3caf": ("Armchair dial", "0d8309ef"),
    "7e7fa7bc": ("Bedroom lightstrip", None),
    "b6257363": ("Door chime", None),
    "a966a5eb": ("Kitchen spots", None),
    "d55eb66e": ("Garden spotlight", None),
    "6c3131a4": ("Stairs switch", None),
    "40ec16d5": ("Study panel", "bd9ba88f"),
    "c4ef392b": ("Bathroom sensor", None),
    "b2879c32": ("Study sensor", "bd9ba88f"),
    "ee8468b9": ("Hallway switch", None),
    "9810e195": ("Study dial", "bd9ba88f"),
    "42b8327b": ("String lights", None),
    "fbbffd8c": ("Laundry switch", "608c8790"),
    "8ec5ef01": ("Porch light switch", "24829e2a"),
    "738ef4a0": ("Landing sensor", "76289d92"),
    "a55e591b": ("Bedroom dimmer", "6fbbf09d"),
    "14caee0d": ("Hallway sensor", None),
    "9d6998c6": ("Pantry sensor", None),
    "6b31cfbc": ("Back door", None),
    "b9b9e165": ("Sofa dial", "0d8309ef"),
    "18ee8fe0": ("Living room dimmer", "0d8309ef"),
    "7bd86197": ("Kitchen sensor", None),
}


def furnish(resources: Iterable[Resource]) -> list[Resource]:
    """The captured resources as the demo home (a furnished copy; the input is not changed)."""
    home = [copy.deepcopy(r) for r in resources]
    by_prefix = {r["id"][:8]: r for r in home}
    for prefix, name in GROUP_NAMES.items():
        by_prefix[prefix]["metadata"]["name"] = name
    placed: set[str] = set()
    for prefix, (name, room) in DEVICES.items():
        device = by_prefix[prefix]
        device["metadata"]["name"] = name
        if room is not None:
            by_prefix[room]["children"].append({"rid": device["id"], "rtype": "device"})
            placed.add(device["id"])
    # A device in a room belongs to the home through that room, not on its own.
    for resource in home:
        if resource["type"] == "bridge_home":
            resource["children"] = [c for c in resource["children"] if c["rid"] not in placed]
    return home


async def walk_about(world: World, rng: random.Random, mean_gap: float = 120.0) -> None:
    """Someone moves about the home: in front of a random motion sensor every ``mean_gap``
    seconds on average (exponential gaps), for 2 to 60 seconds each time. Runs until cancelled."""
    sensors = [m["id"] for m in world.of_type("motion")]
    while True:
        world.move(rng.choice(sensors), seconds=rng.uniform(2, 60))
        await asyncio.sleep(rng.expovariate(1 / mean_gap))
