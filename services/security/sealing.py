"""Sealing a reply to a one-time key, so nothing on the wire sees plaintext.

A requester makes a fresh X25519 key pair for each request and sends the public
half with it; the responder derives a key from an ephemeral key pair of its own
(X25519, then HKDF-SHA256) and encrypts the reply with AES-256-GCM. Only the
requester's private half, which never leaves its process, can open it: a
subscriber on `_INBOX.>` or anyone replaying the wire sees ciphertext.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenantplane.services.runtime.errors import InvalidRequest

_INFO = b"tenantplane one-time reply v1"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


def _key(shared: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=_INFO).derive(shared)


@dataclass(frozen=True)
class OneTimeKey:
    """The requester's key pair for one request."""

    private: X25519PrivateKey

    @classmethod
    def new(cls) -> OneTimeKey:
        """A fresh key pair."""
        return cls(X25519PrivateKey.generate())

    @property
    def public(self) -> str:
        """The public half, to send with the request."""
        return _b64(self.private.public_key().public_bytes(*_RAW))

    def open(self, sealed: dict[str, str]) -> bytes:
        """The plaintext of a reply sealed to this key.

        Raises:
            InvalidRequest: the reply was not sealed to this key, or was altered.
        """
        try:
            peer = X25519PublicKey.from_public_bytes(_unb64(sealed["epk"]))
            key = _key(self.private.exchange(peer))
            return AESGCM(key).decrypt(_unb64(sealed["nonce"]), _unb64(sealed["ct"]), None)
        except (KeyError, ValueError, InvalidTag) as e:
            raise InvalidRequest("the sealed reply does not open with this request's key") from e


@dataclass(frozen=True)
class StandingKey(OneTimeKey):
    """A key pair that is the same for the same secret and purpose: the installation's
    key for secrets kept sealed in files (`tenantctl secrets seal`), derived from a
    master key, so it needs no storage of its own and rotates with the master keys."""

    @classmethod
    def of(cls, secret: bytes, purpose: str) -> StandingKey:
        """The key pair of `purpose` under `secret`."""
        info = f"tenantplane standing key v1/{purpose}".encode()
        seed = HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(secret)
        return cls(X25519PrivateKey.from_private_bytes(seed))


# A value sealed to an installation's standing key, as text for a file.
SEALED_TEXT = "sealed:v1:"


def seal_text(public: str, plaintext: bytes) -> str:
    """`plaintext` sealed to `public`, as one line of text (`sealed:v1:...`)."""
    return SEALED_TEXT + _b64(json.dumps(seal_to(public, plaintext)).encode())


def open_text(keys: Sequence[OneTimeKey], text: str) -> bytes:
    """The plaintext of `seal_text`'s text, opened by the first of `keys` that can.

    Raises:
        InvalidRequest: not sealed text, or sealed to none of `keys`.
    """
    if not text.startswith(SEALED_TEXT):
        raise InvalidRequest(f"not sealed text (it starts with {SEALED_TEXT!r})")
    try:
        sealed = json.loads(_unb64(text.removeprefix(SEALED_TEXT)))
    except ValueError as e:
        raise InvalidRequest("sealed text that is cut or altered") from e
    for key in keys:
        try:
            return key.open(sealed)
        except InvalidRequest:
            continue
    raise InvalidRequest(
        "sealed to another key than this installation's (tenantctl secrets public-key "
        "shows the key to seal to)"
    )


def seal_to(public: str, plaintext: bytes) -> dict[str, str]:
    """`plaintext` encrypted so only the holder of `public`'s private half can read it.

    Raises:
        InvalidRequest: `public` is not an X25519 public key.
    """
    try:
        peer = X25519PublicKey.from_public_bytes(_unb64(public))
    except ValueError as e:
        raise InvalidRequest("public_key is not a base64 X25519 public key") from e
    ephemeral = X25519PrivateKey.generate()
    nonce = os.urandom(12)
    ciphertext = AESGCM(_key(ephemeral.exchange(peer))).encrypt(nonce, plaintext, None)
    epk = ephemeral.public_key().public_bytes(*_RAW)
    return {"epk": _b64(epk), "nonce": _b64(nonce), "ct": _b64(ciphertext)}
