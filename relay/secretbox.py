"""Encryption of secrets at rest (caregivers' Apprise URLs carry passwords and API keys).

The key comes from ``HPOLL_RELAY_SECRET_KEY`` (a Fernet key; every replica must share it) or,
for a single machine, from a key file created next to the database with mode 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(RuntimeError):
    """A secret could not be decrypted (wrong or rotated key)."""


class SecretBox:
    """Encrypt/decrypt short secrets."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_environment(cls, key_file: Path) -> SecretBox:
        """Key from HPOLL_RELAY_SECRET_KEY, else from (or newly into) ``key_file``."""
        if env_key := os.environ.get("HPOLL_RELAY_SECRET_KEY"):
            return cls(env_key.encode())
        if key_file.exists():
            return cls(key_file.read_bytes().strip())
        key = Fernet.generate_key()
        key_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
        return cls(key)

    def encrypt(self, secret: str) -> bytes:
        """Ciphertext of a secret."""
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        """The secret back; SecretBoxError if the key does not fit."""
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as err:
            raise SecretBoxError("cannot decrypt: the relay's secret key has changed") from err
