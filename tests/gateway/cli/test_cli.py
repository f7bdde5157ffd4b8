"""The `safegrid` command line against the test's stores."""

from __future__ import annotations

from gateway.privacy import audit
from gateway.privacy.crypto import Keyring
from gateway.records.reports import Report


def test_keys_generate_makes_a_usable_key(run):
    result = run("keys", "generate", "--kid", "k9")
    kid, _, _ = result.output.strip().partition(":")
    assert kid == "k9"
    ring = Keyring.from_env_value(result.output.strip())
    assert ring.decrypt(ring.encrypt("网格", context="x"), context="x") == "网格"


def test_audit_verify_passes_then_finds_tampering(run):
    for i in range(3):
        audit.append("officer:1", "dispatch.acknowledge", f"dispatch:{i}", {"to": "acknowledged"})
    ok = run("audit", "verify")
    assert ok.exit_code == 0, ok.output
    head = audit.AuditEntry.objects.order_by("-seq").first()
    assert head.hash in ok.output
    audit.AuditEntry._get_collection().update_one({"seq": 2}, {"$set": {"actor": "officer:2"}})
    bad = run("audit", "verify")
    assert bad.exit_code == 1
    assert "seq 2" in bad.output


def test_reencrypt_moves_data_to_a_new_key(run, client, county, monkeypatch, settings):
    from tests.helpers import auth, token_of

    client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 张秀英")),
                json={"client_id": "rekey-0001", "category": "OTHER", "details": "旧钥匙加密"})
    new_keys = f"k2:{Keyring.generate_key()},{settings.data_keys}"
    monkeypatch.setenv("SAFEGRID_DATA_KEYS", new_keys)
    first = run("reencrypt")
    assert first.exit_code == 0, first.output
    assert run("reencrypt").output.strip().endswith("re-encrypted 0 values")
    raw = Report._get_collection().find_one({"client_id": "rekey-0001"})
    assert raw["details"].startswith("sg1:k2:")
    ring = Keyring.from_env_value(new_keys)
    assert ring.decrypt(raw["details"], context="report.details") == "旧钥匙加密"
    # The old key can go: everything sealed, the phone index key included, opens with k2.
    only_new = new_keys.split(",")[0]
    for name, stored in _sealed_values():
        assert stored.startswith("sg1:k2:"), name
    monkeypatch.setenv("SAFEGRID_DATA_KEYS", only_new)
    from gateway.privacy import phonebook
    from gateway.records.people import Reporter

    phonebook.forget()
    assert run("password", "--phone", "+8613800001001",
               "--password", "a-new-long-passphrase").output.strip() == "password set"
    assert Reporter.by_phone("+8613800001001").get().phone == "+8613800001001"


def _sealed_values():
    """(collection.field, value) of every stored value that looks sealed."""
    from mongoengine.connection import get_db

    db = get_db()
    for name in db.list_collection_names():
        for doc in db[name].find():
            for field, value in doc.items():
                if isinstance(value, str) and value.startswith("sg1:"):
                    yield f"{name}.{field}", value


def test_audit_anchor_then_verify_checks_the_anchor_file(run, monkeypatch, tmp_path):
    anchors = tmp_path / "audit-anchors.jsonl"
    assert run("audit", "anchor").exit_code == 1  # no file set: says so
    monkeypatch.setenv("SAFEGRID_AUDIT_ANCHOR_FILE", str(anchors))
    for i in range(4):
        audit.append("officer:1", "dispatch.acknowledge", f"dispatch:{i}", {"to": "acknowledged"})
    first = run("audit", "anchor")
    assert first.exit_code == 0, first.output
    head = audit.AuditEntry.objects.order_by("-seq").first()
    assert f"anchored: seq 4 hash {head.hash}" in first.output
    assert "unchanged" in run("audit", "anchor").output
    assert len(anchors.read_text().splitlines()) == 1

    ok = run("audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert "checked 1 external anchors" in ok.output

    # Rewrite the whole chain consistently from seq 2: only the anchor can tell.
    collection = audit.AuditEntry._get_collection()
    prev = collection.find_one({"seq": 1})["hash"]
    for raw in collection.find({"seq": {"$gte": 2}}).sort("seq", 1):
        forged = audit.entry_hash(raw["seq"], raw["at"], "officer:9", raw["action"],
                                  raw["subject"], raw["details"], prev)
        collection.update_one({"_id": raw["_id"]}, {"$set": {
            "actor": "officer:9", "prev_hash": prev, "hash": forged}})
        prev = forged
    bad = run("audit", "verify")
    assert bad.exit_code == 1
    assert "anchor at seq 4: anchor line 1 (" in bad.output
    assert "0 altered, 0 broken links" in bad.output
    # An explicit file is checked instead of the setting's.
    monkeypatch.delenv("SAFEGRID_AUDIT_ANCHOR_FILE")
    assert run("audit", "verify").exit_code == 0
    assert run("audit", "verify", "--anchors", str(anchors)).exit_code == 1


def test_revoke_tokens_of_a_lost_phone(run, client, county):
    from tests.helpers import auth, token_of

    officer = token_of(county, "officer 乌峰派出所")
    other = token_of(county, "officer 南台派出所")
    login = client.post("/api/v1/auth/login",
                        json={"phone": "+8613800003001", "password": county.password})
    assert login.status_code == 200
    inbox = "/api/v1/stations/530627-WF/dispatches"
    assert client.get(inbox, headers=auth(officer)).status_code == 200
    result = run("revoke-tokens", "--phone", "138 0000 3001")
    assert result.exit_code == 0, result.output
    assert "revoked 3 tokens of that officer" in result.output  # CLI token, access, refresh
    assert client.get(inbox, headers=auth(officer)).status_code == 401
    assert client.get(inbox, headers=auth(login.json["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={
        "refresh_token": login.json["refresh_token"]}).status_code == 401
    assert client.get("/api/v1/stations/530627-NT/dispatches",
                      headers=auth(other)).status_code == 200  # nobody else's
    assert audit.AuditEntry.objects(action="token.revoke_all").count() == 1
    assert run("revoke-tokens", "--phone", "+8613999999999").exit_code == 1


def test_password_refuses_breached_or_guessable_ones_and_audits_a_change(run, county):
    weak = run("password", "--phone", "+8613800003001", "--password", "password1234")
    assert weak.exit_code == 1
    assert "breached" in weak.output
    assert audit.AuditEntry.objects(action="account.password_set").count() == 0
    ok = run("password", "--phone", "+8613800003001", "--password", "orchard lantern 27 乌峰")
    assert ok.output.strip() == "password set"
    [entry] = audit.AuditEntry.objects(action="account.password_set")
    assert entry.actor.startswith("cli:")  # and the operating-system user who ran it
    assert len(entry.actor) > len("cli:")


SETTINGS_VARS = ("MONGODB_URI", "REDIS_URL", "SAFEGRID_DATA_KEYS")


def test_a_missing_setting_is_one_sentence_and_exit_status_2(run, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no var/safegrid.env here
    monkeypatch.delenv("SAFEGRID_DATA_KEYS")
    for args in (("init-db",), ("audit", "verify"), ("grid", "stats"), ("sweep",)):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "SAFEGRID_DATA_KEYS is not set" in result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_the_cli_uses_the_settings_make_run_wrote(run, settings, monkeypatch, tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "safegrid.env").write_text(
        f"MONGODB_URI={settings.mongodb_uri}\nREDIS_URL={settings.redis_url}\n"
        f"SAFEGRID_DATA_KEYS={settings.data_keys}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in SETTINGS_VARS:
        monkeypatch.delenv(name)
    audit.append("officer:1", "dispatch.acknowledge", "dispatch:1", {})
    result = run("audit", "verify")
    assert result.exit_code == 0, result.output
    assert audit.head() is not None
    assert audit.head()[1] in result.output


def test_every_token_names_a_person(run, county):
    from gateway.access.tokens import principal_for
    from gateway.records.people import Officer

    officer = Officer.objects(station_code="530627-NT").first()
    nobody = run("token", "--role", "officer", "--station", "530627-NT")
    assert nobody.exit_code == 1
    assert "--phone must name a registered officer" in nobody.output
    wrong = run("token", "--role", "officer", "--phone", officer.phone, "--station", "530627-WF")
    assert wrong.exit_code == 1
    issued = run("token", "--role", "officer", "--phone", officer.phone)
    assert issued.exit_code == 0, issued.output
    who = principal_for(issued.output.strip(), 0)
    assert (who.role, who.subject_id, who.station_code) == ("officer", str(officer.id),
                                                            "530627-NT")
    assert run("token", "--role", "supervisor", "--phone", officer.phone).exit_code == 1
    assert run("token", "--role", "auditor").exit_code == 1
    auditor = run("token", "--role", "auditor", "--label", "审计员 李明 (A0231)")
    assert auditor.exit_code == 0, auditor.output
    subjects = [e.subject for e in audit.AuditEntry.objects(action="token.issue")]
    assert subjects == [f"officer:{officer.id}", "auditor:审计员 李明 (A0231)"]


def test_an_auditor_token_acts_under_its_holders_name(run, client):
    from gateway.access.tokens import principal_for

    issued = run("token", "--role", "auditor", "--label", "A0231")
    who = principal_for(issued.output.strip(), 0)
    assert who.actor == "auditor:A0231"  # not auditor:None
    resp = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {issued.output.strip()}"})
    assert resp.status_code == 200


def test_worker_names_a_lane_or_queues_and_refuses_unknown_ones(run):
    from gateway.worker import worker_queues

    assert worker_queues(lane="fast")[0] == "inbound"  # a texted report first
    assert worker_queues(lane="route") == ("critical", "urgent", "routine")
    assert worker_queues(("sms",)) == ("sms",)
    for args in (["--lane", "fast", "critical"], ["--lane", "slow"], ["nosuch"]):
        result = run("worker", "--burst", *args)
        assert result.exit_code == 2, (args, result.output)
