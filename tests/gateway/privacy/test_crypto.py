"""Encryption at rest: tokens, key rotation, the encrypted field and re-encryption."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import mongoengine as me
import pytest
from mongoengine.errors import InvalidQueryError

from gateway.privacy import crypto
from gateway.privacy.crypto import (
    DecryptError,
    EncryptedStringField,
    Keyring,
    KeyringError,
    KeyringNotConfigured,
    ReencryptError,
    UnknownKeyError,
    is_encrypted,
    key_id,
    reencrypt,
)

K1 = Keyring.generate_key()
K2 = Keyring.generate_key()
SECRET = "受害人张小红，12岁，电话13800138000，最后见于汽车站"


class SealedNote(me.Document):
    """A stand-in for a report with personal data fields."""

    label = me.StringField()
    victim_name = EncryptedStringField(context="test_note.victim_name", max_length=50)
    details = EncryptedStringField(context="test_note.details")

    meta = {"collection": "test_sealed_notes"}


@pytest.fixture
def ring(app) -> Iterator[Keyring]:  # type: ignore[no-untyped-def]
    """Key k1 bound, after (and so over) whatever the app factory bound."""
    ring = Keyring.from_env_value(f"k1:{K1}")
    crypto.set_keyring(ring)
    yield ring
    crypto.set_keyring(None)


def test_round_trip_chinese_text_and_token_format() -> None:
    ring = Keyring.from_env_value(f"k1:{K1}")
    token = ring.encrypt(SECRET, context="report.details")
    assert token.startswith("sg1:k1:")
    assert "张" not in token
    assert SECRET not in token
    assert is_encrypted(token)
    assert not is_encrypted(SECRET)
    assert not is_encrypted(None)
    assert key_id(token) == "k1"
    assert ring.decrypt(token, context="report.details") == SECRET
    # A fresh nonce each time: equal plaintexts do not give equal tokens.
    assert ring.encrypt(SECRET, context="report.details") != token
    assert ring.decrypt(ring.encrypt("", context="c"), context="c") == ""


def test_a_token_does_not_open_in_another_field() -> None:
    ring = Keyring.from_env_value(f"k1:{K1}")
    token = ring.encrypt(SECRET, context="report.victim_name")
    with pytest.raises(DecryptError, match="report.details") as caught:
        ring.decrypt(token, context="report.details")
    assert "张" not in str(caught.value)


@pytest.mark.parametrize("position", [8, 20, -1])
def test_tampered_ciphertext_fails(position: int) -> None:
    ring = Keyring.from_env_value(f"k1:{K1}")
    token = ring.encrypt(SECRET, context="c")
    prefix, body = token[:7], token[7:]
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position] ^= 0x01
    forged = prefix + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(DecryptError):
        ring.decrypt(forged, context="c")


def test_malformed_tokens_fail_clearly() -> None:
    ring = Keyring.from_env_value(f"k1:{K1}")
    for bad in ("sg1:k1", "sg1:k1:", "sg1:k1:@@@", "sg1::AAAA", "plain text", "sg1:k1:AAAA"):
        with pytest.raises(DecryptError):
            ring.decrypt(bad, context="c")


def test_unknown_key_id_names_the_kid_not_the_keys() -> None:
    old = Keyring.from_env_value(f"k1:{K1}")
    token = old.encrypt(SECRET, context="c")
    new = Keyring.from_env_value(f"k2:{K2}")
    with pytest.raises(UnknownKeyError, match="'k1'") as caught:
        new.decrypt(token, context="c")
    assert K1 not in str(caught.value)
    assert K2 not in str(caught.value)


def test_keyring_parsing_accepts_standard_and_urlsafe_base64_with_or_without_padding() -> None:
    key = bytes(range(200, 232))  # has bytes that differ between the two alphabets
    standard = base64.b64encode(key).decode()
    urlsafe = base64.urlsafe_b64encode(key).decode().rstrip("=")
    assert standard != urlsafe
    ring = Keyring.from_env_value(f" a:{standard} ,\n b:{urlsafe}, ")
    assert ring.current_kid == "a"
    assert ring.kids == ("a", "b")
    token = ring.encrypt("x", context="c")
    only_b = Keyring.from_env_value(f"a:{urlsafe}")
    assert only_b.decrypt(token, context="c") == "x"
    assert "a" in repr(ring)
    assert standard not in repr(ring)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("k1:" + base64.b64encode(b"short").decode(), "'k1' is 5 bytes"),
        ("k1:not*base64!", "'k1' is not valid base64"),
        (f"k1:{K1},k1:{K2}", "'k1' appears twice"),
        (f"bad id:{K1}", "invalid"),
        (f"k1:{K1},{K2}", "entry 2 is not"),
    ],
)
def test_bad_keyring_values_name_the_key_id_never_the_key(value: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as caught:
        Keyring.from_env_value(value)
    assert K1 not in str(caught.value)
    assert K2 not in str(caught.value)


def test_rotation_old_tokens_still_open_and_need_rotation() -> None:
    token = Keyring.from_env_value(f"k1:{K1}").encrypt(SECRET, context="c")
    rotated = Keyring.from_env_value(f"k2:{K2},k1:{K1}")
    assert rotated.needs_rotation(token)
    assert rotated.decrypt(token, context="c") == SECRET
    fresh = rotated.encrypt(SECRET, context="c")
    assert key_id(fresh) == "k2"
    assert not rotated.needs_rotation(fresh)


def test_generated_keys_are_32_random_bytes() -> None:
    assert len(base64.urlsafe_b64decode(K1)) == 32
    assert K1 != K2


def test_unbound_keyring_is_a_clear_error() -> None:
    crypto.set_keyring(None)
    with pytest.raises(KeyringNotConfigured, match="SAFEGRID_DATA_KEYS"):
        crypto.keyring()


def test_field_stores_tokens_and_gives_plaintext(ring: Keyring) -> None:
    note = SealedNote(label="n1", victim_name="张小红", details=SECRET).save()
    raw = SealedNote._get_collection().find_one({"_id": note.id})
    assert raw["victim_name"] != "张小红"
    assert raw["details"] != SECRET
    assert key_id(raw["victim_name"]) == "k1"
    assert key_id(raw["details"]) == "k1"
    assert SECRET not in str(raw)
    loaded = SealedNote.objects.get(id=note.id)
    assert loaded.victim_name == "张小红"
    assert loaded.details == SECRET

    loaded.details = "改了"
    loaded.save()
    assert SealedNote.objects.get(id=note.id).details == "改了"
    SealedNote.objects(id=note.id).update(set__victim_name="李四")
    assert SealedNote.objects.get(id=note.id).victim_name == "李四"
    raw = SealedNote._get_collection().find_one({"_id": note.id})
    assert "李四" not in str(raw)
    assert "改了" not in str(raw)


def test_field_validates_plaintext_and_refuses_value_queries(ring: Keyring) -> None:
    with pytest.raises(me.ValidationError):
        SealedNote(victim_name="x" * 51).save()
    with pytest.raises(InvalidQueryError, match="encrypted"):
        SealedNote.objects(victim_name="张小红").first()


def test_swapping_stored_tokens_between_fields_is_detected(ring: Keyring) -> None:
    note = SealedNote(victim_name="张小红", details=SECRET).save()
    collection = SealedNote._get_collection()
    raw = collection.find_one({"_id": note.id})
    collection.update_one({"_id": note.id}, {"$set": {"victim_name": raw["details"]}})
    with pytest.raises(DecryptError):
        SealedNote.objects.get(id=note.id)


def test_legacy_plaintext_loads(ring: Keyring) -> None:
    SealedNote._get_collection().insert_one({"label": "old", "details": "旧的明文"})
    assert SealedNote.objects.get(label="old").details == "旧的明文"


def test_reencrypt_moves_stored_values_to_the_current_key(ring: Keyring) -> None:
    notes = [SealedNote(label=str(i), victim_name=f"名字{i}", details=f"{SECRET} #{i}").save()
             for i in range(3)]
    SealedNote(label="empty").save()  # no encrypted values at all
    collection = SealedNote._get_collection()
    collection.insert_one({"label": "legacy", "details": "旧的明文"})

    rotated = Keyring.from_env_value(f"k2:{K2},k1:{K1}")
    crypto.set_keyring(rotated)
    before = collection.find_one({"_id": notes[0].id})
    assert rotated.needs_rotation(before["details"])

    lines: list[str] = []
    assert reencrypt([SealedNote], echo=lines.append) == 7  # 3 docs x 2 fields + 1 legacy
    assert any("7 value(s) re-encrypted" in line for line in lines)
    assert not any(SECRET in line or "名字" in line for line in lines)
    for raw in collection.find({"label": {"$ne": "empty"}}):
        assert key_id(raw["details"]) == "k2"
        assert "明文" not in raw["details"]
    for i, note in enumerate(notes):
        loaded = SealedNote.objects.get(id=note.id)
        assert loaded.details == f"{SECRET} #{i}"
        assert loaded.victim_name == f"名字{i}"
    assert SealedNote.objects.get(label="legacy").details == "旧的明文"

    # Idempotent; and k1 can now be retired.
    assert reencrypt([SealedNote]) == 0
    crypto.set_keyring(Keyring.from_env_value(f"k2:{K2}"))
    assert SealedNote.objects.get(id=notes[2].id).details == f"{SECRET} #2"


def test_reencrypt_reports_values_it_cannot_open_and_does_the_rest(ring: Keyring) -> None:
    good = SealedNote(details="好的").save()
    lost = Keyring.from_env_value(f"k0:{Keyring.generate_key()}").encrypt(
        "没有钥匙", context="test_note.details")
    collection = SealedNote._get_collection()
    bad_id = collection.insert_one({"details": lost}).inserted_id
    crypto.set_keyring(Keyring.from_env_value(f"k2:{K2},k1:{K1}"))

    lines: list[str] = []
    with pytest.raises(ReencryptError) as caught:
        reencrypt([SealedNote], echo=lines.append)
    assert caught.value.rewritten == 1
    assert any(str(bad_id) in line and "'k0'" in line for line in lines)
    assert collection.find_one({"_id": bad_id})["details"] == lost
    assert key_id(collection.find_one({"_id": good.id})["details"]) == "k2"


def test_reencrypt_update_is_guarded_on_the_old_value(ring: Keyring,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    note = SealedNote(details="原来").save()
    crypto.set_keyring(Keyring.from_env_value(f"k2:{K2},k1:{K1}"))
    collection = SealedNote._get_collection()
    real_find = type(collection).find

    def find_then_concurrent_write(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        rows = list(real_find(self, *args, **kwargs))
        # Someone saves a new value between the walk's read and its update.
        SealedNote.objects(id=note.id).update(set__details="新的")
        return iter(rows)

    monkeypatch.setattr(type(collection), "find", find_then_concurrent_write)
    assert reencrypt([SealedNote]) == 0
    monkeypatch.undo()
    assert SealedNote.objects.get(id=note.id).details == "新的"
    assert reencrypt([SealedNote]) == 0
