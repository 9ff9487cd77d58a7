"""Encrypted OpenD links: the RSA key file and the per-connection AES cipher, on `cryptography` (pyca).

An OpenD configured with an RSA private key encrypts every body: InitConnect with the key itself (RSA
PKCS#1 v1.5, in chunks), everything after it with the AES-128 key the InitConnect reply hands out, in
CBC (when the reply carries an IV) or in the gateway's own FTAES-ECB. Nothing in a frame header marks
encryption, so both ends must agree beforehand: the same key file on both sides. The header's SHA-1 is
always that of the plain body, which is how a wrong key shows itself.

The client and the simulated gateway both use this module, so they cannot drift apart; the official
futu-api client is the independent check that it is OpenD's scheme.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from proto_client.errors import ProtocolError

log = logging.getLogger(__name__)

AES_KEY_LEN = 16
_BLOCK = 16
# futu-api and OpenD encrypt InitConnect in plaintext chunks of 100 bytes (a 1024-bit key's limit is 117).
RSA_CHUNK = 100
_PKCS1V15 = asym_padding.PKCS1v15()


class PacketEncAlgo(IntEnum):
    """InitConnect.C2S.packetEncAlgo: the AES mode a client asks for."""

    NONE = -1
    FTAES_ECB = 0
    AES_ECB = 1
    AES_CBC = 2


class KeyFileError(ValueError):
    """The RSA key file is missing, unreadable or not an RSA private key; the message names the path only."""


class CipherError(ProtocolError):
    """A body that cannot be decrypted with the connection's key (bad length or padding)."""


@dataclass(frozen=True, slots=True, repr=False)
class RsaKey:
    """The RSA private key OpenD and its clients share. Load it with `RsaKey.load`."""

    path: Path
    private_key: rsa.RSAPrivateKey

    def __repr__(self) -> str:
        return f"RsaKey({str(self.path)!r}, {self.private_key.key_size} bits)"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RsaKey:
        """Read a PEM RSA private key; refuse anything else naming the path, never the contents.

        A key others on the machine can read is accepted with a warning: it is the whole secret of the link.
        """
        key_path = Path(path).expanduser()
        try:
            data = key_path.read_bytes()
            mode = key_path.stat().st_mode
        except FileNotFoundError:
            raise KeyFileError(f"RSA key file {str(key_path)!r} does not exist") from None
        except IsADirectoryError:
            raise KeyFileError(f"RSA key file {str(key_path)!r} is a directory, not a PEM key file") from None
        except OSError as exc:
            raise KeyFileError(f"RSA key file {str(key_path)!r} cannot be read: {exc.strerror or exc}") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise KeyFileError(
                f"RSA key file {str(key_path)!r} is protected by a passphrase; OpenD needs an unencrypted key"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise KeyFileError(f"RSA key file {str(key_path)!r} does not hold a PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyFileError(f"RSA key file {str(key_path)!r} holds a private key that is not RSA")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "RSA key file %s can be read by other users (mode %s); restrict it with chmod 600",
                key_path,
                oct(stat.S_IMODE(mode)),
            )
        return cls(key_path, key)

    @property
    def block_size(self) -> int:
        return self.private_key.key_size // 8

    def encrypt(self, data: bytes) -> bytes:
        """RSA PKCS#1 v1.5 with the public half, chunk by chunk, ciphertext blocks concatenated."""
        public = self.private_key.public_key()
        chunk = min(RSA_CHUNK, self.block_size - 11)
        return b"".join(public.encrypt(data[i : i + chunk], _PKCS1V15) for i in range(0, len(data), chunk))

    def decrypt(self, data: bytes) -> bytes:
        """The inverse of `encrypt`. A wrong key yields garbage, not an error: check the SHA-1 afterwards."""
        size = self.block_size
        if not data or len(data) % size:
            raise CipherError(f"RSA-encrypted body is {len(data)} bytes, not a multiple of {size}")
        try:
            return b"".join(self.private_key.decrypt(data[i : i + size], _PKCS1V15) for i in range(0, len(data), size))
        except ValueError as exc:
            raise CipherError(f"RSA decryption failed: {exc}") from None


class PacketCipher:
    """AES-128 for one connection's bodies after InitConnect: CBC when an IV was negotiated, else FTAES-ECB.

    CBC uses the same IV for every packet and a fresh cipher per packet, with PKCS#7 padding. FTAES-ECB
    zero-pads to whole blocks and appends one block whose last byte is len(body) % 16.
    """

    __slots__ = ("_cbc", "_cipher")

    def __init__(self, key: str | bytes, iv: str | bytes | None = None) -> None:
        key_bytes = key.encode() if isinstance(key, str) else key
        if len(key_bytes) != AES_KEY_LEN:
            raise ProtocolError(f"the gateway's AES key is {len(key_bytes)} bytes, expected {AES_KEY_LEN}")
        if iv is None:
            self._cbc = False
            self._cipher: Cipher[modes.ECB] | Cipher[modes.CBC] = Cipher(algorithms.AES(key_bytes), modes.ECB())
        else:
            iv_bytes = iv.encode() if isinstance(iv, str) else iv
            if len(iv_bytes) != _BLOCK:
                raise ProtocolError(f"the gateway's AES-CBC IV is {len(iv_bytes)} bytes, expected {_BLOCK}")
            self._cbc = True
            self._cipher = Cipher(algorithms.AES(key_bytes), modes.CBC(iv_bytes))

    @property
    def mode(self) -> str:
        return "AES-CBC" if self._cbc else "FTAES-ECB"

    def encrypt(self, body: bytes) -> bytes:
        encryptor = self._cipher.encryptor()
        if self._cbc:
            padder = padding.PKCS7(128).padder()
            return encryptor.update(padder.update(body) + padder.finalize()) + encryptor.finalize()
        tail = len(body) % _BLOCK
        padded = body + b"\0" * (-len(body) % _BLOCK)
        return encryptor.update(padded) + encryptor.finalize() + b"\0" * (_BLOCK - 1) + bytes([tail])

    def decrypt(self, body: bytes) -> bytes:
        if self._cbc:
            if not body or len(body) % _BLOCK:
                raise CipherError(f"AES-CBC body is {len(body)} bytes, not a positive multiple of {_BLOCK}")
            decryptor = self._cipher.decryptor()
            plain = decryptor.update(body) + decryptor.finalize()
            unpadder = padding.PKCS7(128).unpadder()
            try:
                return unpadder.update(plain) + unpadder.finalize()
            except ValueError:
                raise CipherError("AES-CBC body has invalid padding") from None
        if len(body) < _BLOCK or len(body) % _BLOCK:
            raise CipherError(f"FTAES-ECB body is {len(body)} bytes, not a positive multiple of {_BLOCK}")
        tail = body[-1]
        if tail >= _BLOCK:
            raise CipherError(f"FTAES-ECB trailer claims {tail} bytes in the last block")
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(body[:-_BLOCK]) + decryptor.finalize()
        if tail:
            if not plain:
                raise CipherError("FTAES-ECB trailer claims a partial block after an empty body")
            plain = plain[: len(plain) - _BLOCK + tail]
        return plain
