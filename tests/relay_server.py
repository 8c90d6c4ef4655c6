"""The real relay for the integration's tests: ``python -m relay`` in a child process, with its
own SQLite file, driven the way an operator would (the CLI), on a loopback port.

Blocking on purpose: fixtures start it outside Home Assistant's event loop, and tests that need
the relay down and up again call :meth:`stop` and :meth:`start` in an executor.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.relay.relay_process import free_port, serve_command


class RelayServer:
    """One relay process (restartable on the same port and database)."""

    def __init__(self, directory: Path, template: Path | None = None, **env: str) -> None:
        """Nothing runs until :meth:`start`; ``template``: an already migrated database."""
        self.db_path = directory / "relay.db"
        self.db_url = f"sqlite+aiosqlite:///{self.db_path}"
        #: Chosen at the first start (sockets may be blocked before), kept across restarts.
        self.port = 0
        self.env = {
            **os.environ,
            "HPOLL_RELAY_SECRET_KEY": "",
            "HPOLL_RELAY_RATE": "1000",
            "HPOLL_RELAY_BURST": "1000",
            # A revoked token must fail on the very next report in these tests.
            "HPOLL_RELAY_TOKEN_CACHE_SECONDS": "0",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        if template is not None:
            shutil.copyfile(template, self.db_path)
        else:
            self.cli("db", "upgrade")

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        """Run ``hpoll-relay --db … ARGS`` and return what it printed."""
        done = subprocess.run(
            [sys.executable, "-m", "relay", "--db", self.db_url, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"hpoll-relay {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def add_home(
        self, name: str = "Mum's flat", timezone: str = "Europe/Amsterdam"
    ) -> tuple[str, str]:
        """A new home: (home id, token)."""
        printed = self.cli("home", "add", name, "--timezone", timezone)
        home_id = re.search(r"home id: (\S+)", printed)
        token = re.search(r"token:\s+(\S+)", printed)
        assert home_id, printed
        assert token, printed
        return home_id.group(1), token.group(1)

    def start(self) -> None:
        """Serve, and wait (up to 30 s) until /healthz answers."""
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            serve_command(self.db_url, self.port),
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"relay exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("relay did not become healthy")
            time.sleep(0.05)

    def stop(self) -> None:
        """Terminate and reap."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def stored_reports(self, home_id: str) -> list[tuple[str, str]]:
        """(report_id, sent_at) of every stored report of a home, in the order received."""
        with sqlite3.connect(self.db_path) as connection:
            rows = connection.execute(
                "SELECT report_id, sent_at FROM reports WHERE home_id = ? ORDER BY id",
                (home_id,),
            ).fetchall()
        connection.close()
        return [(str(r[0]), str(r[1])) for r in rows]
