"""Phone numbers at rest: sealed like other personal data, found by a keyed blind index.

A phone number is personal data (it names the teacher who reported a
neighbour) and also the key SMS finds people by. So every stored number is
two values: the number sealed with AES-GCM (`gateway.privacy.crypto`), and its blind
index, HMAC-SHA256 of the E.164 number under a separate index key, which is
what queries and unique indexes match.

The index key is 32 random bytes made once per database and stored in the
`secrets` collection sealed with the data keyring (envelope encryption):
`safegrid reencrypt` re-wraps it when the data keys rotate, and since the index
key itself never changes, the indexes stay valid. A database dump without the
data keys yields neither the numbers nor a way to test guesses against the
index (an unkeyed hash of the ~10^10 mobile numbers falls to enumeration).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets

import mongoengine as me
from pymongo.errors import DuplicateKeyError

from gateway.privacy import crypto
from gateway.privacy.crypto import EncryptedStringField, keyring

INDEX_KEY_NAME = "phone_index"
INDEX_KEY_BYTES = 32

# Associated data of sealed numbers, one per place they are kept (a token copied
# from one place to another does not open there). Never change one once data exists.
REPORTER_PHONE = "reporter.phone"
OFFICER_PHONE = "officer.phone"
SMS_PHONE = "sms.phone"  # senders and recipients of SMS, sightings


class Secret(me.Document):
    """A key SafeGrid made for itself, stored sealed under the data keyring."""

    name = me.StringField(primary_key=True, max_length=40)
    value = EncryptedStringField(context="secret.value", required=True)

    meta = {"collection": "secrets"}


# This process's index key, loaded once (`forget` on reconfiguration).
_key: list[bytes] = []


def forget() -> None:
    """Drop the cached index key (the process is being bound to another database)."""
    _key.clear()


def index_key() -> bytes:
    """The database's phone index key, made on first use by whichever process comes first."""
    if _key:
        return _key[0]
    collection = Secret._get_collection()
    if collection.find_one({"_id": INDEX_KEY_NAME}, {"_id": 1}) is None:
        fresh = base64.b64encode(secrets.token_bytes(INDEX_KEY_BYTES)).decode("ascii")
        with contextlib.suppress(DuplicateKeyError):  # another process made it first
            collection.insert_one({"_id": INDEX_KEY_NAME,
                                   "value": keyring().encrypt(fresh, context="secret.value")})
    stored = Secret.objects(name=INDEX_KEY_NAME).get()
    _key[:] = [base64.b64decode(stored.value)]
    return _key[0]


def phone_index(phone: str) -> str:
    """The blind index of an (already normalised, E.164) phone number, hex."""
    return hmac.new(index_key(), b"phone:" + phone.encode("utf-8"), hashlib.sha256).hexdigest()


def phone_tag(phone: str) -> str:
    """The first 128 bits of the blind index: names a number in Redis keys and refs."""
    return phone_index(phone)[:32]


def seal(phone: str, context: str = SMS_PHONE) -> str:
    """`phone` sealed for storage in the place `context` names."""
    return keyring().encrypt(phone, context=context)


def unseal(value: str | None, context: str = SMS_PHONE) -> str:
    """The clear number of a sealed value ("" for None; legacy clear values pass through)."""
    return crypto.unseal(value, context=context)
