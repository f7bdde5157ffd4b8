"""Phone numbers at rest: sealed, found by a keyed blind index, never stored in clear."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import pytest

from gateway.custody.sealed_data import index_phones
from gateway.extensions import redis_store
from gateway.privacy import phonebook
from gateway.privacy.crypto import keyring
from gateway.records.people import Officer, Reporter
from gateway.startup import ensure_indexes
from sms.records import InboundMessage, OptOut, OutboundMessage, Sighting
from tests.gateway.api.test_reports_api import run_jobs
from tests.gateway.intake.test_inbound_sms import REGISTERED, SECRET, mo
from tests.helpers import with_sms

DIGITS = REGISTERED.removeprefix("+86")  # 13800001001, as people write it


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, SECRET, kannel_password="pw")


def everything_stored() -> str:
    """Every document of every collection, as one string."""
    from mongoengine.connection import get_db

    db = get_db()
    return "\n".join(str(doc) for name in db.list_collection_names()
                     for doc in db[name].find())


def test_a_reporters_phone_is_sealed_and_found_by_its_blind_index(county):
    stored = Reporter._get_collection().find_one(
        {"phone_index": phonebook.phone_index(REGISTERED)})
    assert stored is not None
    assert stored["phone"].startswith("sg1:")
    assert DIGITS not in str(stored)
    assert Reporter.by_phone(REGISTERED).get().phone == REGISTERED
    assert Reporter.by_phone("+8613999999999").first() is None


def test_the_index_key_is_random_per_database_and_kept_sealed(county):
    [secret] = phonebook.Secret._get_collection().find()
    assert secret["value"].startswith("sg1:")  # wrapped by the data keyring
    key = base64.b64decode(keyring().decrypt(secret["value"], context="secret.value"))
    assert len(key) == 32
    expected = hmac.new(key, b"phone:" + REGISTERED.encode(), hashlib.sha256).hexdigest()
    assert phonebook.phone_index(REGISTERED) == expected
    # Not an unkeyed hash anyone could enumerate.
    assert expected != hashlib.sha256(REGISTERED.encode()).hexdigest()


def test_a_key_made_by_another_process_is_used_not_replaced(app):
    theirs = secrets.token_bytes(32)
    phonebook.Secret._get_collection().insert_one({
        "_id": phonebook.INDEX_KEY_NAME,
        "value": keyring().encrypt(base64.b64encode(theirs).decode(), context="secret.value")})
    phonebook.forget()
    expected = hmac.new(theirs, b"phone:" + REGISTERED.encode(), hashlib.sha256).hexdigest()
    assert phonebook.phone_index(REGISTERED) == expected
    assert phonebook.Secret.objects.count() == 1


def test_an_sms_exchange_leaves_no_clear_number_anywhere(client, county, sendsms):
    mo(client, "举报 拐卖儿童 村口面包车上有个哭闹的男孩")
    mo(client, "S 402913 @530627001002003 在车站看到", ucs2=True)
    run_jobs()
    assert InboundMessage.objects.count() == 2
    assert OutboundMessage.objects.count() >= 2  # receipts, acknowledgements, notices
    assert Sighting.objects.count() == 1
    stored = everything_stored()
    assert DIGITS not in stored
    assert "张秀英" not in stored  # and no clear names either
    assert "在车站看到" not in stored  # nor what the sighting said
    keys = " ".join(k.decode() for k in redis_store.conn.keys("*"))
    assert DIGITS not in keys
    # What is stored is still usable: the reply went to the right number.
    assert any(r.params["to"] == REGISTERED for r in sendsms.requests)
    inbound = InboundMessage.objects.first()
    assert inbound.sender_index == phonebook.phone_index(REGISTERED)
    assert phonebook.unseal(inbound.raw["from"]) == REGISTERED


def test_an_older_database_gets_blind_indexes_at_start_and_sealed_by_reencrypt(app, run):
    # As stored before phones were sealed: clear numbers, unique indexes on them.
    reporters = Reporter._get_collection()
    reporters.drop_indexes()
    reporters.insert_many([{"phone": REGISTERED, "name": "张秀英", "role": "grid_worker"},
                           {"phone": "+8613800001002", "name": "李国强", "role": "teacher"}])
    reporters.create_index("phone", unique=True)
    opt_outs = OptOut._get_collection()
    opt_outs.drop_indexes()
    opt_outs.insert_one({"phone": "+8613912345678"})
    opt_outs.create_index("phone", unique=True)
    officers = Officer._get_collection()
    officers.insert_one({"name": "李警官", "role": "officer", "county_code": "530627",
                         "phone": "+8613800003001"})

    for cls in (Reporter, Officer, OptOut):
        cls._collection = None  # as in a new process: mongoengine has not touched them yet
    ensure_indexes()  # what every process does at start

    assert Reporter.by_phone(REGISTERED).get().name == "张秀英"
    assert Reporter.by_phone("+8613800001002").get().name == "李国强"
    assert Officer.by_phone("+8613800003001").get().name == "李警官"
    [opt_out] = opt_outs.find()
    assert opt_out == {"_id": opt_out["_id"],
                       "phone_index": phonebook.phone_index("+8613912345678")}
    assert "phone_1" not in reporters.index_information()
    # A second opt-out no longer collides on the old unique index of clear numbers.
    opt_outs.insert_one({"phone_index": "x" * 64})

    result = run("reencrypt")
    assert result.exit_code == 0, result.output
    assert DIGITS not in everything_stored()
    assert Reporter.by_phone(REGISTERED).get().phone == REGISTERED
    assert index_phones() == 0  # nothing left to index
