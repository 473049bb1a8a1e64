"""The ledger's Ed25519 signing key, kept outside every store.

Whoever can write a store folder can rewrite an unkeyed hash chain; with every ledger
entry and every receipt signed by a key that lives elsewhere, they cannot forge or
re-chain entries without that key. Where the key lives, first match wins:

1. the path the caller gives (``--key-file``, ``Sisa(key_file=...)``);
2. ``$OBLIVIATE_LEDGER_KEY`` (a file path);
3. ``$XDG_CONFIG_HOME/obliviate/keys/ledger-ed25519.pem`` (``~/.config/...`` by default).

The key is created on first use (a writer needs it) as a PKCS#8 PEM file with mode 0600
in a 0700 folder; a key file that others can read is refused, as ssh does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from obliviate.errors import LedgerError

log = logging.getLogger(__name__)

KEY_ENV = "OBLIVIATE_LEDGER_KEY"
KEY_NAME = "ledger-ed25519.pem"


def default_key_path() -> Path:
    """Where the signing key lives when no path is given (see the module docstring)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "obliviate" / "keys" / KEY_NAME


def fingerprint(public_key_hex: str) -> str:
    """``sha256:<hex>`` of the raw 32-byte public key: what a requester compares."""
    return "sha256:" + hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()


@dataclass(frozen=True)
class VerifyKey:
    """A public key: checks signatures; anyone may hold it."""

    public_hex: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_hex)

    def verify(self, message: bytes, signature: str) -> bool:
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.public_hex))
            key.verify(base64.b64decode(signature, validate=True), message)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


class SigningKey:
    """The private key: signs ledger entries and receipts."""

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None) -> None:
        self._private = private
        self.path = path
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = VerifyKey(raw.hex())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._private.sign(message)).decode()

    # -- files ------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> SigningKey:
        """Read the key file (LedgerError if it is missing, unreadable or open to others)."""
        path = Path(path).expanduser() if path is not None else default_key_path()
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise LedgerError(f"No ledger signing key at {path}. Give the key the store was written with "
                              f"(--key-file or ${KEY_ENV}); a writer creates one on first use.") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise LedgerError(f"The ledger signing key {path} can be read or written by other users (mode "
                              f"{stat.S_IMODE(mode):o}). Run `chmod 600 {path}`.")
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise LedgerError(f"{path} is not an Ed25519 PEM private key ({exc}). Restore it from a backup.") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise LedgerError(f"{path} holds a {type(private).__name__}, not an Ed25519 key.")
        return cls(private, path)

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str] | None = None) -> SigningKey:
        """The key at ``path`` (or the default place), created with mode 0600 if absent."""
        path = Path(path).expanduser() if path is not None else default_key_path()
        if path.exists():
            return cls.load(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = cls.generate()
        pem = key._private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile
            return cls.load(path)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        log.warning("created the ledger signing key %s (fingerprint %s); back it up, and keep it out of "
                    "the store folders", path, key.public.fingerprint)
        return cls(key._private, path)


__all__ = ["KEY_ENV", "SigningKey", "VerifyKey", "default_key_path", "fingerprint"]
