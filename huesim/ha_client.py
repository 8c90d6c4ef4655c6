"""Drive a running Home Assistant as a new user would, through its HTTP and WebSocket API.

Onboarding (the owner account), application credentials, the hpoll config flow (Hue sign-in
against the simulator, then the link step) and its options (the relay) — every step through the
same public endpoints the frontend uses, so what the demo and the end-to-end test set up is what
a person clicking through the UI would get. Nothing is written into ``.storage`` by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import itertools
import time
from typing import Any, cast

from aiohttp import ClientError, ClientSession, ClientWebSocketResponse, WSMsgType
from yarl import URL

type Json = dict[str, Any]


class HomeAssistantError(Exception):
    """Home Assistant answered something the next step cannot work with."""


class HomeAssistantClient:
    """One signed-in user of one Home Assistant."""

    def __init__(self, session: ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        #: The frontend's own OAuth client id: tokens for it also sign a browser in.
        self.client_id = f"{self.base_url}/"
        self.tokens: Json = {}
        self._ws: ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    # -- plumbing -------------------------------------------------------------------------------

    async def wait_until_up(self) -> None:
        """Wait for the HTTP server (it starts once the frontend is set up); callers bound it
        with ``asyncio.timeout``."""
        while True:
            try:
                async with self.session.get(f"{self.base_url}/api/onboarding") as reply:
                    if reply.status == 200:
                        return
            except ClientError:
                pass
            await asyncio.sleep(0.5)

    async def request(
        self, method: str, path: str, payload: Mapping[str, Any] | None = None
    ) -> Any:
        """An authenticated REST call; a non-2xx answer raises with Home Assistant's text."""
        headers = {
            "Authorization": f"Bearer {self.tokens['access_token']}",
            # Sent by the frontend: OAuth flows build their redirect URI from it.
            "HA-Frontend-Base": self.base_url,
        }
        async with self.session.request(
            method, f"{self.base_url}{path}", json=payload, headers=headers
        ) as reply:
            if reply.status >= 300:
                raise HomeAssistantError(f"{method} {path}: {reply.status} {await reply.text()}")
            return await reply.json()

    async def ws(self, message_type: str, **fields: Any) -> Any:
        """One WebSocket command; returns its result or raises with the error."""
        if self._ws is None:
            self._ws = await self.session.ws_connect(f"{self.base_url}/api/websocket")
            await self._ws.receive_json()  # auth_required
            await self._ws.send_json({"type": "auth", "access_token": self.tokens["access_token"]})
            if (await self._ws.receive_json())["type"] != "auth_ok":
                raise HomeAssistantError("WebSocket authentication refused")
        message_id = next(self._ids)
        await self._ws.send_json({"id": message_id, "type": message_type, **fields})
        while True:
            message = await self._ws.receive()
            if message.type is not WSMsgType.TEXT:
                raise HomeAssistantError(f"WebSocket closed during {message_type}")
            reply = message.json()
            if reply.get("id") == message_id and reply.get("type") == "result":
                if not reply["success"]:
                    raise HomeAssistantError(f"{message_type}: {reply['error']}")
                return reply["result"]

    async def close(self) -> None:
        """Close the WebSocket, if one was opened."""
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    # -- onboarding -----------------------------------------------------------------------------

    async def onboard(self, name: str, username: str, password: str, language: str = "en") -> None:
        """Create the owner account and finish every onboarding step, as the frontend does."""
        async with self.session.post(
            f"{self.base_url}/api/onboarding/users",
            json={
                "client_id": self.client_id,
                "name": name,
                "username": username,
                "password": password,
                "language": language,
            },
        ) as reply:
            if reply.status != 200:
                raise HomeAssistantError(f"onboarding refused: {await reply.text()}")
            code = (await reply.json())["auth_code"]
        await self._token({"grant_type": "authorization_code", "code": code})
        await self.request("POST", "/api/onboarding/core_config")
        await self.request("POST", "/api/onboarding/analytics")
        await self.request(
            "POST",
            "/api/onboarding/integration",
            {"client_id": self.client_id, "redirect_uri": f"{self.base_url}/?auth_callback=1"},
        )

    async def _token(self, form: Mapping[str, str]) -> None:
        async with self.session.post(
            f"{self.base_url}/auth/token", data={**form, "client_id": self.client_id}
        ) as reply:
            if reply.status != 200:
                raise HomeAssistantError(f"token refused: {await reply.text()}")
            self.tokens = await reply.json()

    def browser_tokens(self) -> Json:
        """What the frontend keeps in ``localStorage.hassTokens`` for a signed-in browser."""
        return {
            **self.tokens,
            "hassUrl": self.base_url,
            "clientId": self.client_id,
            "expires": int((time.time() + self.tokens["expires_in"]) * 1000),
        }

    # -- hpoll ----------------------------------------------------------------------------------

    async def add_application_credentials(
        self, domain: str, client_id: str, client_secret: str, name: str
    ) -> None:
        """Settings -> Application credentials -> Add."""
        await self.ws(
            "application_credentials/create",
            domain=domain,
            client_id=client_id,
            client_secret=client_secret,
            name=name,
        )

    async def add_integration(self, domain: str) -> Json:
        """Settings -> Devices & services -> Add integration; returns the first step."""
        return cast(
            Json,
            await self.request(
                "POST",
                "/api/config/config_entries/flow",
                {"handler": domain, "show_advanced_options": False},
            ),
        )

    async def flow_step(self, flow: Json, user_input: Mapping[str, Any]) -> Json:
        """Submit a config flow step's form."""
        path = f"/api/config/config_entries/flow/{flow['flow_id']}"
        return cast(Json, await self.request("POST", path, user_input))

    async def sign_in_externally(self, flow: Json) -> Json:
        """The browser part of an OAuth step: open the authorize URL, follow it back to Home
        Assistant's callback, then continue the flow (as the frontend does when the popup
        closes)."""
        expect(flow, "external", "auth")
        async with self.session.get(flow["url"], allow_redirects=False) as reply:
            if reply.status != 302:
                raise HomeAssistantError(f"sign-in refused: {reply.status} {await reply.text()}")
            callback = URL(reply.headers["Location"])
        if not str(callback).startswith(f"{self.base_url}/auth/external/callback"):
            raise HomeAssistantError(f"sign-in came back to {callback}, not this Home Assistant")
        async with self.session.get(callback) as reply:
            if reply.status != 200:
                raise HomeAssistantError(f"callback refused: {await reply.text()}")
        return await self.flow_step(flow, {})

    async def flows_in_progress(self, domain: str) -> list[Json]:
        """Flows Home Assistant started on its own and waits for the user to finish (e.g. a
        re-authentication, shown under Settings -> Devices & services)."""
        flows = await self.ws("config_entries/flow/progress")
        return [flow for flow in flows if flow["handler"] == domain]

    async def options(self, entry_id: str) -> Json:
        """The entry's Configure dialog; returns its first step."""
        return cast(
            Json,
            await self.request(
                "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
            ),
        )

    async def options_step(self, flow: Json, user_input: Mapping[str, Any]) -> Json:
        """Submit an options flow step's form."""
        path = f"/api/config/config_entries/options/flow/{flow['flow_id']}"
        return cast(Json, await self.request("POST", path, user_input))

    async def wait_for_entry(self, domain: str, entry_id: str) -> Json:
        """Wait while the entry is (re)loading, e.g. after its options changed; returns it.
        Callers bound it with ``asyncio.timeout``; an entry that failed raises."""
        while True:
            entries = await self.request("GET", f"/api/config/config_entries/entry?domain={domain}")
            entry = cast(Json, next(e for e in entries if e["entry_id"] == entry_id))
            if entry["state"] == "loaded":
                return entry
            if entry["state"] in ("setup_error", "setup_retry", "migration_error"):
                raise HomeAssistantError(f"{domain} did not load: {entry.get('reason')}")
            await asyncio.sleep(0.2)

    # -- reading --------------------------------------------------------------------------------

    async def states(self) -> list[Json]:
        """Every entity's state."""
        return cast(list[Json], await self.request("GET", "/api/states"))

    async def state(self, entity_id: str) -> Json:
        """One entity's state."""
        return cast(Json, await self.request("GET", f"/api/states/{entity_id}"))

    async def entities(self, platform: str) -> list[Json]:
        """The entity registry's entries of one integration."""
        return [
            e for e in await self.ws("config/entity_registry/list") if e["platform"] == platform
        ]

    async def devices(self, entry_id: str) -> list[Json]:
        """The device registry's devices of one config entry."""
        return [
            d
            for d in await self.ws("config/device_registry/list")
            if entry_id in d["config_entries"]
        ]

    async def update_entity(self, entity_id: str) -> None:
        """``homeassistant.update_entity``: poll now instead of at the next interval."""
        await self.request(
            "POST", "/api/services/homeassistant/update_entity", {"entity_id": entity_id}
        )


def expect(step: Json, kind: str, step_id: str | None = None) -> Json:
    """The flow is where we think it is, or a readable error (with the flow's errors)."""
    if step.get("type") != kind or (step_id is not None and step.get("step_id") != step_id):
        raise HomeAssistantError(
            f"expected {kind} {step_id or ''}, got {step.get('type')} {step.get('step_id')}: "
            f"{step.get('errors') or step.get('reason') or ''}"
        )
    return step
