"""scrypt hashing of human-chosen secrets."""

from __future__ import annotations

import base64

import pytest

from gateway.access import passwords
from gateway.access.passwords import hash_secret, needs_rehash, verify_secret, weakness


def test_hash_format_and_round_trip() -> None:
    stored = hash_secret("正确的马电池订书钉")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert verify_secret("正确的马电池订书钉", stored)
    assert not verify_secret("正确的马电池订书钊", stored)
    assert not verify_secret("", stored)
    assert not needs_rehash(stored)


def test_salted_so_equal_secrets_hash_differently() -> None:
    assert hash_secret("123456") != hash_secret("123456")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "scrypt$16384$8$1$c2FsdA==",  # too few parts
        "bcrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,
        "scrypt$x$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,
        "scrypt$16385$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,  # n not a power of 2
        "scrypt$" + str(2**30) + "$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,  # too costly
        "scrypt$16384$8$1$!!!$" + "A" * 44,
    ],
)
def test_malformed_records_never_verify_and_need_rehash(stored: str) -> None:
    assert verify_secret("anything", stored) is False
    assert needs_rehash(stored)


def test_weaker_parameters_still_verify_but_need_rehash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "N", 2**12)
    weak = hash_secret("pin-4321")
    monkeypatch.undo()
    assert weak.split("$")[1] == str(2**12)
    assert verify_secret("pin-4321", weak)
    assert needs_rehash(weak)
    assert not needs_rehash(hash_secret("pin-4321"))


def test_tampered_hash_fails() -> None:
    stored = hash_secret("s3cret")
    head, digest = stored.rsplit("$", 1)
    raw = bytearray(base64.b64decode(digest))
    raw[0] ^= 1
    assert not verify_secret("s3cret", head + "$" + base64.b64encode(bytes(raw)).decode())


@pytest.mark.parametrize(("password", "why"), [
    ("short1!", "at least 12 characters"),
    ("qwertyuiop123", "breached"),  # in the lists of leaked passwords
    ("Password1234", "breached"),  # case does not help
    ("aaaaaaaaaaaaaaaa", "too easy to guess"),
    ("13800001001abc", "too easy to guess"),  # the account's own phone number
])
def test_weak_passwords_are_refused_with_a_reason(password, why):
    problem = weakness(password, about=("13800001001", "张秀英"))
    assert problem is not None
    assert why in problem


@pytest.mark.parametrize("password", ["乌峰 river lantern 27 orchard", "vN4#qT8!zR2@wL6$"])
def test_strong_passwords_pass(password):
    assert weakness(password) is None
