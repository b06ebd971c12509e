"""The Ed25519 key that signs checkpoints, kept in a file outside the database.

Where: `$APPRAISAL_SIGNING_KEY` if set, else `$XDG_CONFIG_HOME/appraisal-ledger/signing.key`
(`~/.config/appraisal-ledger/signing.key`): `Settings.signing_key_path` (api/settings.py). The file is an unencrypted PKCS#8 PEM, created on first
use with mode 0600 in a directory of mode 0700; a key file that group or others may read is
refused, as ssh refuses one. Whoever can write the database cannot sign: keep the file (and a
backup of it) away from the database's host where that matters. The public key is what an
inspector trusts: `appraisal key` prints it as PEM; its id is the first 8 bytes of SHA-256 of its
32 raw bytes, in hex.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class SigningKeyError(Exception):
    """The signing key cannot be used (unreadable, too open, not an Ed25519 key)."""


def key_id(public: Ed25519PublicKey) -> str:
    return sha256(raw_public(public)).digest()[:8].hex()


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public(text: str | bytes) -> Ed25519PublicKey:
    """A public key from PEM, or from the base64 of its 32 raw bytes (as a checkpoint carries it)."""
    data = text.encode() if isinstance(text, str) else text
    if b"BEGIN PUBLIC KEY" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError("not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip()))


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey
    path: Path

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def verify_signature(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def load_or_create(path: Path) -> Signer:
    """The signing key at `path`, created there (0600) when missing."""
    if not path.exists():
        return _create(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(f"{path} may be read by others (mode {stat.filemode(mode)}): chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"{path} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return Signer(key, path)


def _create(path: Path) -> Signer:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:  # O_EXCL: two processes creating the key at once must not end with two different keys
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return Signer(key, path)
