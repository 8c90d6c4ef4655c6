"""A live Home Assistant linked to the simulated home (``scripts/run --home-assistant``).

* **Its own environment**: Home Assistant's frontend, and the integrations it always sets up
  (Assist, every base entity platform), need packages the project's virtualenv does not carry.
  They are installed once into a virtualenv of their own under ``~/.cache/hpoll``
  (``$XDG_CACHE_HOME``), which also sees the project's packages (Home Assistant itself, at the
  pinned version) through a ``.pth`` line. Versions come from the installed Home Assistant: its
  manifests and its package constraints.
* **A fresh config dir outside the repository**, with ``custom_components/hpoll`` linked to this
  checkout. Home Assistant runs with that dir as working directory, so the repository's own
  ``custom_components`` package can never shadow it.
* **The real setup**: the simulator (with its control API, someone walking about), then Home
  Assistant pointed at it through ``HPOLL_HUE_BASE_URL``, onboarded, and hpoll added through
  its config flow and options flow over HTTP (:mod:`huesim.ha_client`), pushing to a relay.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import fcntl
import hashlib
from importlib import metadata
import json
import os
from pathlib import Path
import random
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from typing import Final, Self

from aiohttp import ClientSession, web
from homeassistant.bootstrap import DEFAULT_INTEGRATIONS
import homeassistant.components as ha_components
from homeassistant.components.http import config as http_config
from homeassistant.const import __version__ as HA_VERSION
from packaging.requirements import Requirement
from packaging.version import Version

from .clock import SystemClock
from .control import add_control_routes, usage
from .demo import DEMO_CLIENT, demo_home_token, inbox_app
from .ha_client import HomeAssistantClient, HomeAssistantError, Json, expect
from .home import walk_about
from .server import HueCloudSimulator, create_app

REPOSITORY: Final = Path(__file__).resolve().parent.parent
INTEGRATION: Final = REPOSITORY / "custom_components" / "hpoll"
DOMAIN: Final = "hpoll"
#: What the demo's Home Assistant loads: the whole UI (frontend, settings, history, logbook,
#: automations, Assist), not ``default_config``: that would also start network discovery
#: (bluetooth, dhcp, ssdp, zeroconf, usb), media stacks, and ``my``, which sends OAuth sign-ins
#: to my.home-assistant.io instead of back to this Home Assistant.
INTEGRATIONS: Final = (
    "frontend",
    "config",
    "history",
    "logbook",
    "conversation",
    "automation",
    "script",
    "person",
    "system_health",
)
CONFIGURATION: Final = (
    "# Written by hpoll's live demo (huesim/live.py). No http: block: Home Assistant keeps its\n"
    "# HTTP settings in .storage/http (a YAML http: block is reverted after five minutes).\n"
    "homeassistant:\n"
    "  name: Demo home\n"
    "  time_zone: {time_zone}\n"
    "  country: NL\n"
    "  unit_system: metric\n"
    "logger:\n"
    "  default: warning\n"
    "  logs:\n"
    "    custom_components.hpoll: info\n" + "".join(f"{domain}:\n" for domain in INTEGRATIONS)
)
DEMO_ZONE: Final = "Europe/Amsterdam"
#: A first start on a busy two-core machine (database, translations, the frontend) takes a while.
START_TIMEOUT: Final = 300


# -- the environment ---------------------------------------------------------------------------


def missing_requirements(integrations: tuple[str, ...] = INTEGRATIONS) -> list[str]:
    """Requirements this interpreter lacks, of the integrations Home Assistant always sets up
    (its bootstrap's list: the frontend, the base entity platforms, ...), of ``integrations``,
    and of their dependencies."""
    components = Path(ha_components.__file__).parent
    seen: set[str] = set()
    todo = [*DEFAULT_INTEGRATIONS, *integrations]
    missing: set[str] = set()
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = json.loads((components / domain / "manifest.json").read_text())
        todo += manifest.get("dependencies", [])
        for line in manifest.get("requirements", []):
            requirement = Requirement(line)
            try:
                installed = Version(metadata.version(requirement.name))
            except metadata.PackageNotFoundError:
                missing.add(line)
                continue
            if installed not in requirement.specifier:
                missing.add(line)
    return sorted(missing)


def cache_root() -> Path:
    """Where the environment is kept between runs (outside the repository)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hpoll"


def ensure_environment(say: Callable[[str], None] = print) -> Path:
    """The Python of Home Assistant's own environment, installed on first use; later runs
    (and other checkouts with the same Home Assistant) reuse it."""
    requirements = missing_requirements()
    project_site = sysconfig.get_paths()["purelib"]
    digest = hashlib.sha256("\n".join([project_site, *requirements]).encode()).hexdigest()[:12]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"ha-{HA_VERSION}-{digest}"
    python = target / "bin" / "python"
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second demo or test waits for the first install
        if (target / ".complete").exists():
            return python
        say(f"[ha-env] installing Home Assistant's frontend ({', '.join(requirements)})")
        say(f"[ha-env] into {target} (once)")
        # Built aside and renamed into place: an interrupted install leaves nothing half-done
        # under the name later runs trust (only ``python -m`` is used, so the move is safe).
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
        try:
            substituted = _build(building, project_site, requirements)
        except subprocess.CalledProcessError as err:
            shutil.rmtree(building, ignore_errors=True)
            output = f"{err.stdout}{err.stderr}"[-4000:]
            raise RuntimeError(
                f"installing Home Assistant's environment failed:\n{output}"
            ) from err
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
        if substituted:
            say(f"[ha-env] no wheel or build for {', '.join(substituted)}: newest wheel instead")
    return python


def _build(target: Path, project_site: str, requirements: list[str]) -> list[str]:
    """Create the virtualenv and install; returns what could not be installed as pinned.

    A pinned package with neither a wheel for this Python nor a way to build one (the private
    Python has no C headers) is replaced by the newest wheel of the same project, and said so:
    the frontend imports every base platform, so a missing voice-activity module (Assist
    pipelines) would break pages that have nothing to do with voice."""

    def run(*command: str) -> str:
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603

    run(sys.executable, "-m", "venv", str(target))
    python = str(target / "bin" / "python")
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    # A plain path line: the project's packages become visible, its own .pth files (the
    # editable install that would put this repository on sys.path) are not processed.
    Path(site, "hpoll-project.pth").write_text(project_site + "\n")
    constraints = Path(ha_components.__file__).parent.parent / "package_constraints.txt"
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    pinned = [*pip, "--constraint", str(constraints)]
    substituted: list[str] = []
    try:
        run(*pinned, "--only-binary", ":all:", *requirements)
    except subprocess.CalledProcessError:
        for requirement in requirements:  # one by one: from source, else the newest wheel
            try:
                run(*pinned, requirement)
            except subprocess.CalledProcessError:
                run(*pip, "--only-binary", ":all:", Requirement(requirement).name)
                substituted.append(requirement)
    (target / ".complete").write_text("\n".join([HA_VERSION, *requirements, "", *substituted]))
    return substituted


# -- the config dir and the process ------------------------------------------------------------


def prepare_config(config_dir: Path, port: int, time_zone: str = DEMO_ZONE) -> None:
    """A Home Assistant config dir with hpoll in ``custom_components`` (a link to this
    checkout), listening on 127.0.0.1 only, at ``port``."""
    config_dir = config_dir.resolve()
    if config_dir.is_relative_to(REPOSITORY):
        raise ValueError(f"{config_dir} is inside the repository; use a dir outside it")
    (config_dir / "custom_components").mkdir(parents=True, exist_ok=True)
    link = config_dir / "custom_components" / DOMAIN
    if not link.is_symlink():
        link.symlink_to(INTEGRATION, target_is_directory=True)
    (config_dir / "configuration.yaml").write_text(CONFIGURATION.format(time_zone=time_zone))
    # The HTTP settings' own store, in Home Assistant's schema: the only way to bind loopback on
    # a chosen port from the first start (the SETUP_PORT variable picks a port, on every
    # interface). A demo whose owner password is printed must not listen on the network.
    stable = http_config.HTTP_STORAGE_SCHEMA({"server_host": ["127.0.0.1"], "server_port": port})
    stable |= {"created_at": datetime.now(UTC).isoformat(), "error": None, "error_message": None}
    storage = config_dir / ".storage"
    storage.mkdir(exist_ok=True)
    (storage / http_config.STORAGE_KEY).write_text(
        json.dumps(
            {
                "version": http_config.STORAGE_VERSION,
                "minor_version": http_config.STORAGE_MINOR_VERSION,
                "key": http_config.STORAGE_KEY,
                "data": {"stable": stable, "pending": None, "yaml_migration_done": True},
            }
        )
    )


class HomeAssistantProcess:
    """``python -m homeassistant`` in its environment, its config dir as working directory."""

    def __init__(self, python: Path, config_dir: Path, hue_base_url: str) -> None:
        self.python = python
        self.config_dir = config_dir
        self.hue_base_url = hue_base_url
        self.log = config_dir / "hass.out"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Spawn; output goes to ``hass.out`` in the config dir."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["HPOLL_HUE_BASE_URL"] = self.hue_base_url
        with self.log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                str(self.python),
                "-m",
                "homeassistant",
                "--config",
                str(self.config_dir),
                "--skip-pip",  # everything is installed; never pip at run time
                cwd=self.config_dir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop it in order
            )

    def exited(self) -> int | None:
        """The exit status once it has ended."""
        return None if self.process is None else self.process.returncode

    def tail(self, lines: int = 40) -> str:
        """The end of its output, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    async def stop(self) -> None:
        """SIGTERM (Home Assistant stops cleanly), SIGKILL after 60 s."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


# -- the live home -----------------------------------------------------------------------------


@dataclass
class LiveHome:
    """Simulator + Home Assistant with hpoll set up through its flows; an async context."""

    python: Path
    config_dir: Path
    ha_port: int
    sim_port: int
    relay_url: str | None = None
    relay_token: str | None = None
    lively: bool = True
    seed: int | None = None
    username: str = "demo"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    say: Callable[[str], None] = print
    sim: HueCloudSimulator = field(init=False)
    ha: HomeAssistantClient = field(init=False)
    entry_id: str = field(init=False)
    _stack: contextlib.AsyncExitStack = field(init=False, default_factory=contextlib.AsyncExitStack)

    @property
    def ha_url(self) -> str:
        """Home Assistant's address."""
        return f"http://127.0.0.1:{self.ha_port}"

    @property
    def sim_url(self) -> str:
        """The simulated Hue cloud's address."""
        return f"http://127.0.0.1:{self.sim_port}"

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        stack = self._stack
        self.sim = HueCloudSimulator.from_fixture(
            SystemClock(), clients=dict([DEMO_CLIENT]), furnished=True
        )
        app = create_app(self.sim)
        add_control_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, "127.0.0.1", self.sim_port).start()
        if self.lively:
            walker = asyncio.create_task(walk_about(self.sim.world, random.Random(self.seed)))
            stack.callback(walker.cancel)

        prepare_config(self.config_dir, self.ha_port)
        hass = HomeAssistantProcess(self.python, self.config_dir, self.sim_url)
        await hass.start()
        stack.push_async_callback(hass.stop)
        session = await stack.enter_async_context(ClientSession())
        self.ha = HomeAssistantClient(session, self.ha_url)
        stack.push_async_callback(self.ha.close)
        self.say(f"[ha] starting Home Assistant {HA_VERSION} (log: {hass.log})")
        up = asyncio.create_task(self.ha.wait_until_up())
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while not up.done():
                    if hass.exited() is not None:
                        raise HomeAssistantError(f"Home Assistant exited:\n{hass.tail()}")
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise HomeAssistantError(
                f"Home Assistant did not answer within {START_TIMEOUT} s:\n{hass.tail()}"
            ) from None
        finally:
            up.cancel()
        try:
            await self._set_up()
        except HomeAssistantError as err:
            raise HomeAssistantError(f"{err}\n--- Home Assistant's log:\n{hass.tail()}") from err

    async def _set_up(self) -> None:
        """Onboarding, then hpoll as a user adds it, then its relay option."""
        ha = self.ha
        await ha.onboard("Demo", self.username, self.password)
        self.say(f"[ha] onboarded; adding {DOMAIN} through its config flow")
        flow = await ha.add_integration(DOMAIN)
        if flow.get("type") == "abort" and flow.get("reason") == "missing_credentials":
            # What the frontend does on this abort: ask for the app's credentials, start again.
            await ha.add_application_credentials(DOMAIN, *DEMO_CLIENT, "Hue (simulator)")
            flow = await ha.add_integration(DOMAIN)
        flow = await ha.sign_in_externally(flow)
        entry = expect(await ha.flow_step(expect(flow, "form", "link"), {}), "create_entry")
        self.entry_id = entry["result"]["entry_id"]
        if self.relay_url is not None and self.relay_token is not None:
            await self.push_to_relay(self.relay_url, self.relay_token)
        async with asyncio.timeout(60):
            await ha.wait_for_entry(DOMAIN, self.entry_id)

    async def push_to_relay(self, relay_url: str, token: str) -> Json:
        """Configure -> Push reports to an hpoll relay -> URL and token."""
        options = expect(await self.ha.options(self.entry_id), "form", "init")
        relay = expect(
            await self.ha.options_step(options, {"relay_enabled": True}), "form", "relay"
        )
        return expect(
            await self.ha.options_step(relay, {"relay_url": relay_url, "relay_token": token}),
            "create_entry",
        )


# -- the command -------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, relay_token: str, python: Path) -> None:
    # Ctrl-C (also when started in the background, where SIGINT may be ignored) and SIGTERM
    # stop everything in order: the first one cancels this task, whose cleanup stops Home
    # Assistant (in its own session, so it is not interrupted half-way) and the simulator.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _cancel_once, task, loop)
    inbox = web.AppRunner(inbox_app(lambda line: print(line, flush=True)), access_log=None)
    await inbox.setup()
    await web.TCPSite(inbox, "127.0.0.1", args.inbox_port).start()
    config_dir = Path(tempfile.mkdtemp(prefix="hpoll-ha-demo-"))
    try:
        async with LiveHome(
            python,
            config_dir,
            ha_port=args.ha_port,
            sim_port=args.port,
            relay_url=args.relay,
            relay_token=relay_token,
            seed=args.seed,
            say=lambda line: print(line, flush=True),
        ) as live:
            print(
                "\n".join(
                    [
                        "",
                        f"Home Assistant  {live.ha_url}   user {live.username}, "
                        f"password {live.password}",
                        f"  hpoll is set up (Settings -> Devices & services -> hpoll), pushing "
                        f"to the relay at {args.relay}",
                        f"  config dir {config_dir} (removed when you stop)",
                        f"Hue cloud simulator  {live.sim_url}   someone walks about; "
                        "change the home:",
                        *(f"  {line}" for line in usage(live.sim_url)),
                        "Ctrl-C stops Home Assistant, the simulator and the relay.",
                    ]
                ),
                flush=True,
            )
            await asyncio.Event().wait()
    finally:
        await inbox.cleanup()
        shutil.rmtree(config_dir, ignore_errors=True)


def _cancel_once(task: asyncio.Task[None], loop: asyncio.AbstractEventLoop) -> None:
    print("\nstopping ...", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(signum)
    task.cancel()


def main(argv: list[str] | None = None) -> None:
    """Console entry point (``python -m huesim.live``, run by ``scripts/run --home-assistant``)."""
    parser = argparse.ArgumentParser(prog="python -m huesim.live", description=__doc__)
    parser.add_argument("--relay", default="http://127.0.0.1:8088")
    parser.add_argument("--db", required=True, help="the relay's database URL")
    parser.add_argument("--token-file", default="demo-data/demo-home.token")
    parser.add_argument("--port", type=int, default=8765, help="the Hue cloud simulator")
    parser.add_argument("--ha-port", type=int, default=8123)
    parser.add_argument("--inbox-port", type=int, default=8766, help="the caregiver's inbox")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        token = demo_home_token(args.db, Path(args.token_file), args.inbox_port)
        python = ensure_environment(lambda line: print(line, flush=True))
        asyncio.run(_run(args, token, python))


if __name__ == "__main__":
    main()
