"""hpoll-relay's commands, run as an operator would (SQLite file, real Apprise)."""

from __future__ import annotations

from pathlib import Path
import re
import sqlite3

import pytest

from relay.cli import main
from tests.relay.sink import running_sink


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("HPOLL_RELAY_SECRET_KEY", raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    assert main(["--db", url, "db", "upgrade"]) == 0
    return url


def run(db: str, *args: str) -> int:
    return main(["--db", db, *args])


def test_unmigrated_database_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    assert main(["--db", url, "serve"]) == 2
    assert "run 'hpoll-relay db upgrade' first" in capsys.readouterr().err
    assert main(["--db", url, "home", "list"]) == 2


def test_home_lifecycle(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "home", "list") == 0
    assert "no homes yet" in capsys.readouterr().out
    assert run(db, "home", "add", "Mum's flat", "--timezone", "Europe/Berlin") == 0
    out = capsys.readouterr().out
    home_id = re.search(r"home id: (\S+)", out)[1]  # type: ignore[index]
    token = re.search(r"token:\s+(\S+)", out)[1]  # type: ignore[index]
    assert token.startswith("hpr_")
    assert run(db, "home", "list") == 0
    listing = capsys.readouterr().out
    assert home_id in listing
    assert token not in listing
    assert run(db, "home", "rotate-token", "Mum's flat") == 0
    assert "revoked" in capsys.readouterr().out
    assert run(db, "home", "revoke-token", home_id) == 0
    assert run(db, "home", "remove", home_id) == 2
    assert "--yes" in capsys.readouterr().err
    assert run(db, "home", "remove", home_id, "--yes") == 0
    assert run(db, "home", "rotate-token", home_id) == 2
    assert "no home" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["home", "add", "X", "--timezone", "Mars/Olympus"], "unknown timezone 'Mars/Olympus'"),
        (["home", "add", " ", "--timezone", "Europe/Berlin"], "needs a name"),
        (
            ["caregiver", "add", "Ann", "--apprise", "file:///etc/passwd"],
            "'file' scheme is not allowed",
        ),
        (["caregiver", "add", "Ann", "--apprise", "nonsense"], "not an Apprise URL"),
        (["caregiver", "add", "Ann", "--apprise", "tgram://"], "Apprise rejects this tgram"),
        (["subscribe", "nobody", "Ann"], "no home"),
    ],
)
def test_clear_errors(
    db: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run(db, *args) == 2
    assert message in capsys.readouterr().err


def test_caregivers_subscriptions_and_notify_test(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(db, "home", "add", "Flat", "--timezone", "Europe/Berlin") == 0
    with running_sink() as sink:
        secret_url = sink.url + "?secret=hunter2"
        assert run(db, "caregiver", "add", "Ann", "--apprise", secret_url) == 0
        assert run(db, "caregiver", "add", "Ann", "--apprise", sink.url) == 2
        assert "exists already" in capsys.readouterr().err
        assert run(db, "notify-test", "Ann") == 0
        out = capsys.readouterr().out
        assert "sent: delivered via JSON" in out
        assert sink.received[0]["title"] == "hpoll test"
        assert "Ann" in sink.received[0]["message"]
    # The URL is stored encrypted: the secret is nowhere in the database file.
    database = Path(db.split("///", 1)[1])
    assert b"hunter2" not in database.read_bytes()
    with sqlite3.connect(database) as connection:
        stored = connection.execute("select apprise_url_encrypted from caregivers").fetchone()[0]
    assert b"hunter2" not in stored
    assert (tmp_path / "relay.key").exists()

    assert (
        run(db, "subscribe", "Flat", "Ann", "--summary-at", "08:00", "--alerts", "battery,offline")
        == 0
    )
    assert "summary at 08:00 home time, alerts: battery, offline" in capsys.readouterr().out
    assert run(db, "subscribe", "Flat", "Ann", "--summary-at", "25:00") == 2
    assert run(db, "subscribe", "Flat", "Ann", "--alerts", "fire") == 2
    assert "unknown alert kinds" in capsys.readouterr().err
    assert run(db, "caregiver", "list") == 0
    assert "Ann" in capsys.readouterr().out


def test_notify_test_reports_failure(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with running_sink(status=500) as sink:
        assert run(db, "caregiver", "add", "Bob", "--apprise", sink.url) == 0
        assert run(db, "notify-test", "Bob") == 1
    out = capsys.readouterr().out
    assert "FAILED: 1 of 1 services failed (JSON)" in out
    assert "127.0.0.1" not in out  # the URL is never echoed


def test_prune(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "db", "prune") == 0
    assert "removed 0 reports and 0 messages older than 30 days" in capsys.readouterr().out


def test_alerting_settings_ack_and_history(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "home", "add", "Flat", "--timezone", "Europe/Berlin") == 0
    home_id = re.search(r"home id: (\S+)", capsys.readouterr().out)[1]  # type: ignore[index]
    assert (
        run(db, "home", "set", "Flat", "--inactivity-minutes", "120", "--active", "08:00-21:30")
        == 0
    )
    assert capsys.readouterr().out.strip() == (
        "alerting settings: active_end=21:30, active_start=08:00, inactivity_minutes=120"
    )
    assert run(db, "home", "set", "Flat", "--offline-minutes", "0") == 2
    assert "offline minutes must be a whole number above 0" in capsys.readouterr().err
    assert run(db, "home", "set", "Flat", "--active", "8-9") == 2
    assert run(db, "home", "set", "Flat", "--active", "08:00") == 2
    assert "not a span of hours" in capsys.readouterr().err
    assert run(db, "home", "set", "Flat") == 2
    assert "nothing to set" in capsys.readouterr().err

    with running_sink() as sink:
        assert run(db, "caregiver", "add", "Ann", "--apprise", sink.url) == 0
    assert run(db, "caregiver", "quiet", "Ann", "22:00-07:00") == 0
    assert "quiet hours: 22:00-07:00 (home time)" in capsys.readouterr().out
    assert run(db, "caregiver", "quiet", "Ann", "off") == 0
    assert "quiet hours: none" in capsys.readouterr().out

    assert run(db, "alerts") == 0
    assert "no alerts" in capsys.readouterr().out
    database = Path(db.split("///", 1)[1])
    with sqlite3.connect(database) as connection:
        connection.execute(
            "insert into alerts (home_id, kind, subject, state, opened_at, urgent, "
            "escalation_level, details) values (?, 'inactivity', '', 'open', "
            "'2026-07-01 09:00:00.000000', 1, 0, '{\"text\": \"no activity since 06:00\"}')",
            (home_id,),
        )
    connection.close()
    assert run(db, "ack", "1", "--by", "Ben") == 0
    assert f"alert 1 (inactivity, home {home_id}): acked" in capsys.readouterr().out
    assert run(db, "alerts", "--home", "Flat") == 0
    assert "inactivity acked by Ben  no activity since 06:00" in capsys.readouterr().out
    assert run(db, "ack", "7") == 2
    assert "no alert 7" in capsys.readouterr().err


def test_digest_and_message_history(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "notifications") == 0
    assert "no messages yet" in capsys.readouterr().out
    with running_sink() as sink:
        assert run(db, "caregiver", "add", "Team", "--apprise", sink.url) == 0
    assert run(db, "caregiver", "digest", "Team", "on") == 0
    assert "digest on" in capsys.readouterr().out
    database = Path(db.split("///", 1)[1])
    with sqlite3.connect(database) as connection:
        assert connection.execute("select digest from caregivers").fetchone() == (1,)
        connection.execute(
            "insert into notifications (caregiver_id, kind, dedup_key, title, body, status, "
            "created_at, due_at, attempts, last_error) values (1, 'summary', 'k', "
            "'Mum: All normal', 'b', 'pending', '2026-07-01 06:00:00.000000', "
            "'2026-07-01 06:00:00.000000', 2, '1 of 1 services failed (JSON)')"
        )
    connection.close()
    assert run(db, "notifications") == 0
    out = capsys.readouterr().out
    assert "Team" in out
    assert "pending  attempts 2  Mum: All normal  last error: 1 of 1 services failed (JSON)" in out
