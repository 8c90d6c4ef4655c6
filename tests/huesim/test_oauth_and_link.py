"""The simulator's OAuth2 and remote-linking endpoints behave like Hue's."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

from aiohttp import ClientSession, encode_basic_auth
import pytest
from yarl import URL

from tests.conftest import APP_KEY, CLIENT_ID, CLIENT_SECRET, RunningCloud

REDIRECT = "https://my.home-assistant.io/redirect/oauth"
BASIC = encode_basic_auth(CLIENT_ID, CLIENT_SECRET)


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


async def _authorize(cloud: RunningCloud, http: ClientSession, state: str = "xyz") -> str:
    async with http.get(
        f"{cloud.base_url}/v2/oauth2/authorize",
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "state": state,
            "redirect_uri": REDIRECT,
        },
        allow_redirects=False,
    ) as response:
        assert response.status == 302
        location = URL(response.headers["Location"])
    assert str(location.with_query(None)) == REDIRECT
    assert location.query["state"] == state
    return location.query["code"]


async def _token(
    cloud: RunningCloud, http: ClientSession, form: dict[str, str], auth: str | None = BASIC
) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": auth} if auth else {}
    async with http.post(
        f"{cloud.base_url}/v2/oauth2/token", data=form, headers=headers
    ) as response:
        return response.status, await response.json()


async def test_authorization_code_flow_and_rotating_refresh(
    hue_cloud: RunningCloud, http: ClientSession
) -> None:
    code = await _authorize(hue_cloud, http)
    status, tokens = await _token(
        hue_cloud,
        http,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
    )
    assert status == 200
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 604799
    # A code works once.
    status, error = await _token(
        hue_cloud, http, {"grant_type": "authorization_code", "code": code}
    )
    assert (status, error["error"]) == (400, "invalid_grant")
    # Refresh rotates: the new refresh token works, the old one is dead.
    old_refresh = str(tokens["refresh_token"])
    status, refreshed = await _token(
        hue_cloud, http, {"grant_type": "refresh_token", "refresh_token": old_refresh}
    )
    assert status == 200
    assert refreshed["refresh_token"] != old_refresh
    assert refreshed["access_token"] != tokens["access_token"]
    status, error = await _token(
        hue_cloud, http, {"grant_type": "refresh_token", "refresh_token": old_refresh}
    )
    assert (status, error["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (None, "HTTP Basic"),
        (encode_basic_auth(CLIENT_ID, "wrong"), "wrong client"),
        (encode_basic_auth("stranger", CLIENT_SECRET), "wrong client"),
    ],
)
async def test_token_endpoint_insists_on_basic_auth(
    hue_cloud: RunningCloud, http: ClientSession, auth: str | None, expected: str
) -> None:
    code = await _authorize(hue_cloud, http)
    # Credentials in the form body (HA's default) are not enough.
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    status, error = await _token(hue_cloud, http, form, auth)
    assert status == 401
    assert error["error"] == "invalid_client"
    assert expected in str(error["error_description"])


async def test_token_endpoint_rejects_garbage(hue_cloud: RunningCloud, http: ClientSession) -> None:
    headers = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()}
    async with http.post(
        f"{hue_cloud.base_url}/v2/oauth2/token", data={"grant_type": "x"}, headers=headers
    ) as response:
        assert response.status == 401
    async with http.post(
        f"{hue_cloud.base_url}/v2/oauth2/token",
        data={"grant_type": "x"},
        headers={"Authorization": "Basic !!!"},
    ) as response:
        assert response.status == 401
    status, error = await _token(hue_cloud, http, {"grant_type": "password"})
    assert (status, error["error"]) == (400, "unsupported_grant_type")


async def test_code_bound_to_redirect_uri(hue_cloud: RunningCloud, http: ClientSession) -> None:
    code = await _authorize(hue_cloud, http)
    status, error = await _token(
        hue_cloud,
        http,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://evil"},
    )
    assert (status, error["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"client_id": "unknown", "response_type": "code", "redirect_uri": REDIRECT}, 400),
        ({"client_id": CLIENT_ID, "response_type": "token", "redirect_uri": REDIRECT}, 400),
        ({"client_id": CLIENT_ID, "response_type": "code"}, 400),
    ],
)
async def test_authorize_rejects_bad_requests(
    hue_cloud: RunningCloud, http: ClientSession, params: dict[str, str], status: int
) -> None:
    async with http.get(
        f"{hue_cloud.base_url}/v2/oauth2/authorize", params=params, allow_redirects=False
    ) as response:
        assert response.status == status


async def test_access_tokens_expire(hue_cloud: RunningCloud, http: ClientSession) -> None:
    hue_cloud.sim.oauth.access_token_seconds = 60
    token = hue_cloud.issue_tokens()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "hue-application-key": APP_KEY}
    url = f"{hue_cloud.base_url}/route/clip/v2/resource/bridge"
    async with http.get(url, headers=headers) as response:
        assert response.status == 200
    hue_cloud.clock.advance(61)
    async with http.get(url, headers=headers) as response:
        assert response.status == 401
        body = await response.json()
    assert body["fault"]["detail"]["errorcode"] == "keymanagement.service.access_token_expired"


async def test_link_button_then_app_key(hue_cloud: RunningCloud, http: ClientSession) -> None:
    token = hue_cloud.issue_tokens()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    base = hue_cloud.base_url
    async with http.post(f"{base}/route/api", json={"devicetype": "hpoll#t"}, headers=auth) as r:
        assert (await r.json())[0]["error"]["type"] == 101
    async with http.put(f"{base}/route/api/0/config", json={"linkbutton": True}, headers=auth) as r:
        assert await r.json() == [{"success": {"/config/linkbutton": True}}]
    async with http.post(f"{base}/route/api", json={"devicetype": "hpoll#t"}, headers=auth) as r:
        key = (await r.json())[0]["success"]["username"]
    assert key in hue_cloud.sim.app_keys
    # The virtual press does not last.
    hue_cloud.clock.advance(31)
    async with http.post(f"{base}/route/api", json={"devicetype": "hpoll#t"}, headers=auth) as r:
        assert (await r.json())[0]["error"]["type"] == 101
    # Malformed bodies get CLIP v1 errors, not crashes.
    async with http.put(f"{base}/route/api/0/config", data=b"nope", headers=auth) as r:
        assert (await r.json())[0]["error"]["type"] == 2
    async with http.post(f"{base}/route/api", json={"devicetype": 5}, headers=auth) as r:
        assert (await r.json())[0]["error"]["type"] == 5


async def test_route_needs_a_bearer_token(hue_cloud: RunningCloud, http: ClientSession) -> None:
    async with http.get(f"{hue_cloud.base_url}/route/api/0/config") as response:
        assert response.status == 401
    async with http.get(
        f"{hue_cloud.base_url}/route/api/0/config", headers={"Authorization": "Bearer made-up"}
    ) as response:
        body = await response.json()
    assert body["fault"]["detail"]["errorcode"] == "keymanagement.service.invalid_access_token"


async def test_revoked_grant(hue_cloud: RunningCloud, http: ClientSession) -> None:
    tokens = hue_cloud.issue_tokens()
    hue_cloud.sim.oauth.revoke_all()
    status, _ = await _token(
        hue_cloud,
        http,
        {"grant_type": "refresh_token", "refresh_token": str(tokens["refresh_token"])},
    )
    assert status == 400
    async with http.get(
        f"{hue_cloud.base_url}/route/api/0/config",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    ) as response:
        assert response.status == 401
