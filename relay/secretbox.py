"""Encryption of secrets at rest (caregivers' Apprise URLs carry passwords and API keys).

Where the key comes from, in order:

1. ``HPOLL_RELAY_SECRET_KEY``: one Fernet key, or several separated by commas (the first
   encrypts, every one decrypts: how a rotation runs on replicas). Every replica must share it.
2. ``HPOLL_RELAY_KEY_FILE``: an absolute path to a file with one key per line (first one
   encrypts). It must exist and be readable by its owner only.
3. On SQLite only: ``<database>.key`` beside the database file, created with mode 0600 on first
   use. PostgreSQL has no "beside": without 1 or 2 the relay refuses to start its notifier.

No key path is ever taken relative to the working directory.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
from pathlib import Path
import stat

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_ENV = "HPOLL_RELAY_SECRET_KEY"


class SecretBoxError(RuntimeError):
    """A secret could not be decrypted (wrong or rotated key)."""


class SecretKeyError(RuntimeError):
    """No usable secret key: missing, malformed, or readable by others."""


def parse_keys(text: str, source: str) -> list[bytes]:
    """The keys in ``text`` (commas or lines between them); SecretKeyError names ``source``."""
    keys = [part.strip().encode() for part in text.replace(",", "\n").splitlines()]
    keys = [key for key in keys if key]
    if not keys:
        raise SecretKeyError(f"{source} holds no key")
    for key in keys:
        try:
            Fernet(key)
        except ValueError as err:
            raise SecretKeyError(
                f"{source} holds something that is not a Fernet key "
                "(make one with 'hpoll-relay key generate')"
            ) from err
    return keys


def read_key_file(path: Path) -> list[bytes]:
    """The keys in a key file, refusing one that group or others may read or write."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as err:
        raise SecretKeyError(
            f"the key file {path} does not exist (create it with "
            f"'hpoll-relay key generate --file {path}')"
        ) from err
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretKeyError(
            f"the key file {path} is accessible to other users (mode {stat.S_IMODE(mode):04o}); "
            f"run 'chmod 600 {path}'"
        )
    return parse_keys(path.read_text(encoding="ascii", errors="replace"), f"the key file {path}")


def write_key_file(path: Path, keys: Sequence[bytes]) -> None:
    """Write (or atomically replace) a key file, mode 0600 from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(b"\n".join(keys) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class SecretBox:
    """Encrypt with the first key; decrypt with any of them."""

    def __init__(self, *keys: bytes) -> None:
        if not keys:
            raise SecretKeyError("no secret key")
        self.keys = tuple(keys)
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_environment(cls, key_file: Path | None, *, create: bool = False) -> SecretBox:
        """Keys from HPOLL_RELAY_SECRET_KEY, else from ``key_file`` (made when ``create``:
        the SQLite key beside its database); SecretKeyError with what to do otherwise."""
        if env_keys := os.environ.get(KEY_ENV):
            return cls(*parse_keys(env_keys, KEY_ENV))
        if key_file is None:
            raise SecretKeyError(
                f"no secret key: on PostgreSQL set {KEY_ENV} (every replica the same; make one "
                "with 'hpoll-relay key generate') or HPOLL_RELAY_KEY_FILE=/absolute/path"
            )
        if create and not key_file.exists():
            key = Fernet.generate_key()
            try:
                descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                pass
            else:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(key + b"\n")
        return cls(*read_key_file(key_file))

    def encrypt(self, secret: str) -> bytes:
        """Ciphertext of a secret."""
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        """The secret back; SecretBoxError if the key does not fit."""
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as err:
            raise SecretBoxError("cannot decrypt: the relay's secret key has changed") from err

    def rotate(self, ciphertext: bytes) -> bytes:
        """The same secret encrypted with the first key; SecretBoxError if no key fits."""
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken as err:
            raise SecretBoxError("cannot decrypt: none of the relay's keys fits") from err
