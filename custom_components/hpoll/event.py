"""Event entities: Hue buttons and rotary dials, fired when the bridge reports a new press.

Bridges with report times (``button_report.updated``) tell every latest press apart. Older
firmware only keeps ``button.last_event``: a change of it between two polls fires, but the same
event repeated (two short presses in a row between polls) cannot be seen by polling.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable
from typing import override

from homeassistant.components.event import EventDeviceClass, EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import GROUP_CONTROLS
from .coordinator import HpollConfigEntry, HpollCoordinator
from .entity import HpollBaseEntity, HpollDeviceEntity, add_entities_as_they_appear
from .hue import Button, Device, RelativeRotary

PARALLEL_UPDATES = 0

BUTTON_EVENTS = [
    "initial_press",
    "repeat",
    "short_release",
    "long_press",
    "long_release",
    "double_short_release",
]
ROTARY_EVENTS = ["clock_wise", "counter_clock_wise"]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HpollConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One event entity per button and per rotary dial."""

    def build(coordinator: HpollCoordinator, device: Device) -> list[HpollBaseEntity]:
        entities: list[HpollBaseEntity] = [
            ButtonEvent(coordinator, device, button) for button in device.buttons
        ]
        entities.extend(RotaryEvent(coordinator, device, rotary) for rotary in device.rotaries)
        return entities

    add_entities_as_they_appear(entry, async_add_entities, lambda s: s.devices, build)


class _ReportedEvent(HpollDeviceEntity, EventEntity):
    """Fires when what the bridge reports of the latest event changes: polling sees the latest
    event only."""

    options_group = GROUP_CONTROLS

    def __init__(
        self, coordinator: HpollCoordinator, device: Device, service_id: str, key: str
    ) -> None:
        super().__init__(coordinator, device, key)
        self.service_id = service_id
        # What the bridge reported before we started watching is history, not an event.
        self._seen = self._latest()

    @abstractmethod
    def _latest(self) -> Hashable:
        """What identifies the latest event: its report time, or (old firmware, no report
        time) the event itself; None when there is none."""

    @abstractmethod
    def _fire(self) -> None:
        """Trigger the latest event."""

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        reported = self._latest()
        if reported is not None and reported != self._seen:
            self._seen = reported
            self._fire()
            self.async_write_ha_state()
            return
        super()._handle_coordinator_update()

    @override
    def fingerprint(self) -> Hashable:
        return (self.available,)


class ButtonEvent(_ReportedEvent):
    """A button of a Hue switch or sensor."""

    _attr_device_class = EventDeviceClass.BUTTON
    _attr_event_types = BUTTON_EVENTS
    _attr_translation_key = "button"

    def __init__(self, coordinator: HpollCoordinator, device: Device, button: Button) -> None:
        """Named after the button's number on the device."""
        number = button.control_id or 1
        super().__init__(coordinator, device, button.id, f"button_{button.id}")
        self._attr_translation_placeholders = {"number": str(number)}

    def _button(self) -> Button | None:
        device = self.device
        if device is None:
            return None
        return next((b for b in device.buttons if b.id == self.service_id), None)

    @override
    def _latest(self) -> Hashable:
        button = self._button()
        if button is None:
            return None
        return button.updated if button.updated is not None else button.event

    @override
    def _fire(self) -> None:
        button = self._button()
        if button is not None and button.event in BUTTON_EVENTS:
            self._trigger_event(button.event)


class RotaryEvent(_ReportedEvent):
    """A Hue rotary dial: fires its direction with the steps turned."""

    _attr_event_types = ROTARY_EVENTS
    _attr_translation_key = "rotary"

    def __init__(
        self, coordinator: HpollCoordinator, device: Device, rotary: RelativeRotary
    ) -> None:
        """One per dial."""
        super().__init__(coordinator, device, rotary.id, f"rotary_{rotary.id}")

    def _rotary(self) -> RelativeRotary | None:
        device = self.device
        if device is None:
            return None
        return next((r for r in device.rotaries if r.id == self.service_id), None)

    @override
    def _latest(self) -> Hashable:
        rotary = self._rotary()
        if rotary is None:
            return None
        if rotary.updated is not None:
            return rotary.updated
        return (rotary.action, rotary.direction, rotary.steps) if rotary.direction else None

    @override
    def _fire(self) -> None:
        rotary = self._rotary()
        if rotary is not None and rotary.direction in ROTARY_EVENTS:
            self._trigger_event(rotary.direction, {"steps": rotary.steps, "action": rotary.action})
