"""Run the real relay (``python -m relay serve``) as a child process on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from aiohttp import ClientError, ClientSession


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_command(db_url: str, port: int) -> list[str]:
    """``hpoll-relay --db URL serve --port PORT`` with this interpreter."""
    return [sys.executable, "-m", "relay", "--db", db_url, "serve", "--port", str(port)]


class RelayProcess:
    """Start, wait until healthy, kill."""

    def __init__(self, db_url: str, port: int | None = None, **env: str) -> None:
        self.db_url = db_url
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "HPOLL_RELAY_RATE": "100000",
            "HPOLL_RELAY_BURST": "100000",
            **env,
        }
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Spawn and wait (up to 30 s) for /healthz."""
        self.process = await asyncio.create_subprocess_exec(
            *serve_command(self.db_url, self.port),
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = asyncio.get_running_loop().time() + 30
        async with ClientSession() as session:
            while True:
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except ClientError:
                    pass
                if self.process.returncode is not None:
                    raise RuntimeError(f"relay exited with {self.process.returncode}")
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError("relay did not become healthy")
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing."""
        assert self.process is not None
        self.process.kill()

    async def stop(self) -> None:
        """Terminate and reap."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
