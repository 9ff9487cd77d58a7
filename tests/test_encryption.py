"""The RSA key file and the AES packet ciphers, checked against PyCryptodome (futu-api's own crypto library)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from Crypto.Cipher import AES, PKCS1_v1_5
from Crypto.PublicKey import RSA
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from proto_client.encryption import CipherError, KeyFileError, PacketCipher, RsaKey
from tests.support.rsa_keys import make_key

AES_KEY = "0123456789abcdef"
AES_IV = "fedcba9876543210"
BODIES = [b"", b"x", b"fifteen bytes!!", b"sixteen bytes!!!", b"seventeen bytes!!", bytes(range(256)) * 3]


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_key(tmp_path_factory.mktemp("keys") / "opend_rsa.pem")


def test_rsa_round_trip_in_100_byte_chunks_as_futu_api_decrypts_it(key_file: Path) -> None:
    key = RsaKey.load(key_file)
    body = bytes(range(256)) * 2  # 512 bytes: six chunks
    encrypted = key.encrypt(body)
    assert len(encrypted) == 128 * 6
    theirs = PKCS1_v1_5.new(RSA.import_key(key_file.read_bytes()))
    assert b"".join(theirs.decrypt(encrypted[i : i + 128], None) for i in range(0, len(encrypted), 128)) == body
    assert key.decrypt(theirs.encrypt(body[:100]) + theirs.encrypt(body[100:200])) == body[:200]


@pytest.mark.parametrize("body", BODIES)
def test_cbc_is_pkcs7_padded_aes_with_one_iv_for_every_packet(body: bytes) -> None:
    cipher = PacketCipher(AES_KEY, AES_IV)
    encrypted = cipher.encrypt(body)
    pad = 16 - len(body) % 16
    assert AES.new(AES_KEY.encode(), AES.MODE_CBC, iv=AES_IV.encode()).decrypt(encrypted) == body + bytes([pad]) * pad
    assert cipher.encrypt(body) == encrypted  # a fresh cipher per packet
    assert cipher.decrypt(encrypted) == body
    assert cipher.mode == "AES-CBC"


@pytest.mark.parametrize("body", BODIES)
def test_ftaes_ecb_zero_pads_and_appends_a_block_holding_the_tail_length(body: bytes) -> None:
    cipher = PacketCipher(AES_KEY)
    encrypted = cipher.encrypt(body)
    padded = body + b"\0" * (-len(body) % 16)
    assert encrypted[:-16] == AES.new(AES_KEY.encode(), AES.MODE_ECB).encrypt(padded)
    assert encrypted[-16:] == b"\0" * 15 + bytes([len(body) % 16])
    assert cipher.decrypt(encrypted) == body
    assert cipher.mode == "FTAES-ECB"


@pytest.mark.parametrize(
    ("iv", "wire", "problem"),
    [
        (AES_IV, b"short", "not a positive multiple"),
        (AES_IV, b"\0" * 16, "padding"),
        (None, b"\0" * 15, "not a positive multiple"),
        (None, b"\0" * 31 + b"\x20", "trailer"),
    ],
)
def test_undecryptable_bodies_are_protocol_errors(iv: str | None, wire: bytes, problem: str) -> None:
    with pytest.raises(CipherError, match=problem):
        PacketCipher(AES_KEY, iv).decrypt(wire)


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(KeyFileError, match=f"{missing}.*does not exist"):
        RsaKey.load(missing)


def test_an_unreadable_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=f"{tmp_path}.*directory"):
        RsaKey.load(tmp_path)


@pytest.mark.parametrize("kind", ["garbage", "public", "ec", "passphrase"])
def test_a_file_that_is_not_an_rsa_private_key_is_refused_without_showing_it(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.pem"
    secret_looking = b"-----BEGIN RSA PRIVATE KEY-----\nTOPSECRET\n-----END RSA PRIVATE KEY-----\n"
    if kind == "garbage":
        path.write_bytes(secret_looking)
    else:
        rsa_key = RsaKey.load(make_key(tmp_path / "real.pem")).private_key
        if kind == "public":
            data = rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        elif kind == "ec":
            data = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        else:
            data = rsa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.BestAvailableEncryption(b"pass"),
            )
        path.write_bytes(data)
    with pytest.raises(KeyFileError) as info:
        RsaKey.load(path)
    assert str(path) in str(info.value)
    assert "TOPSECRET" not in str(info.value) and "BEGIN" not in str(info.value)


def test_a_key_others_can_read_is_accepted_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = make_key(tmp_path / "shared.pem")
    with caplog.at_level(logging.WARNING, logger="proto_client.encryption"):
        RsaKey.load(path)
    assert not caplog.records
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="proto_client.encryption"):
        key = RsaKey.load(path)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert str(path) in caplog.text and "0o644" in caplog.text and "chmod 600" in caplog.text
    assert "BEGIN" not in repr(key) and str(path) in repr(key)
