"""Backup, restore and the restore drill (`safegrid store …`, gateway/custody/backup.py),
against the embedded store (SecantusDB) with the sample county and a sealed report; and
Redis's own backup (an RDB copy) as docs/operations.md describes it."""

from __future__ import annotations

import json
import shutil
import time

import redis as redis_lib
from mongoengine.connection import get_db

from deploy.processes import Stack, free_port
from gateway.custody import backup
from gateway.custody.sealed_data import SEALED
from gateway.intake.reports import NewReport, file_report
from gateway.privacy.crypto import Keyring, keyring, set_keyring
from gateway.records.people import Reporter
from gateway.records.reports import DETAILS_CONTEXT
from grid.documents import GridCell
from tests.conftest import TEST_DATA_KEYS

DETAILS = "火车站有人带着三个不说话的孩子，往南出口走了"


def sealed_report() -> str:
    reporter = str(Reporter.objects(role="grid_worker").first().id)
    cell = GridCell.objects.only("code").first().code
    doc, _ = file_report(NewReport(reporter_id=reporter, client_id="backup-drill-1",
                                   category="CHILD", details=DETAILS, source="app",
                                   grid_code=cell))
    return str(doc["code"])


def counts(db) -> dict[str, int]:
    return {n: db[n].count_documents({}) for n in db.list_collection_names()
            if not n.startswith("system.")}


def test_the_drill_backs_up_restores_verifies_and_cleans_up(run, county, tmp_path):
    sealed_report()
    db = get_db()
    before = counts(db)
    result = run("store", "drill", str(tmp_path / "bk"))
    assert result.exit_code == 0, result.output
    assert "restore drill passed" in result.output
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert {n: c["count"] for n, c in manifest["collections"].items()} == before
    assert manifest["data_key_ids"] == ["test1"]
    assert "sealed values opened" in result.output
    opened = int(result.output.split(" sealed values opened")[0].rsplit("; ", 1)[1])
    assert opened > 0
    # The CLI bound a new client: ask through it.
    assert not [n for n in get_db().client.list_database_names() if "_drill_" in n]


def test_a_restored_report_still_unseals_with_the_key(run, county, tmp_path):
    code = sealed_report()
    assert run("store", "backup", str(tmp_path / "bk")).exit_code == 0
    target = get_db().name + "_restored"
    try:
        result = run("store", "restore", str(tmp_path / "bk"), "--database", target)
        assert result.exit_code == 0, result.output
        restored = get_db().client[target]
        raw = restored.reports.find_one({"code": code})
        assert raw["details"].startswith("sg1:test1:")  # still sealed at rest
        assert keyring().decrypt(raw["details"], context=DETAILS_CONTEXT) == DETAILS
        # The indexes came back as they were: a second report with the same client id
        # is refused by the restored unique index.
        source = {i["name"]: i for i in backup._indexes(get_db(), "reports")}
        again = {i["name"]: i for i in backup._indexes(restored, "reports")}
        assert again == source
        assert any(i["options"].get("unique") for i in again.values())
    finally:
        get_db().client.drop_database(target)


def test_a_backup_needs_its_keys(county, app, tmp_path):
    sealed_report()
    db = get_db()
    manifest = backup.backup(db, tmp_path / "bk")
    assert backup.verify(db, manifest, SEALED).ok
    set_keyring(Keyring.from_env_value(f"other:{Keyring.generate_key()}"))
    try:
        result = backup.verify(db, manifest, SEALED)
    finally:
        set_keyring(Keyring.from_env_value(TEST_DATA_KEYS))
    assert not result.ok
    assert any("reports" in p and "details: does not open (UnknownKeyError)" in p
               for p in result.problems), result.problems
    assert all(DETAILS not in p for p in result.problems)  # never the content


def test_a_damaged_backup_is_not_restored(run, county, tmp_path):
    assert run("store", "backup", str(tmp_path / "bk")).exit_code == 0
    damaged = tmp_path / "bk" / "reporters.bson"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    target = get_db().name + "_damaged"
    result = run("store", "restore", str(tmp_path / "bk"), "--database", target)
    assert result.exit_code != 0
    assert "reporters.bson does not match its SHA-256" in result.output
    assert target not in get_db().client.list_database_names()  # nothing was written


def test_restore_refuses_a_database_that_holds_documents(run, county, tmp_path):
    assert run("store", "backup", str(tmp_path / "bk")).exit_code == 0
    result = run("store", "restore", str(tmp_path / "bk"))  # into the live database
    assert result.exit_code != 0
    assert "already holds documents" in result.output


def test_a_backup_goes_into_a_new_directory_and_a_missing_manifest_is_refused(run, county,
                                                                               tmp_path):
    (tmp_path / "bk").mkdir()
    (tmp_path / "bk" / "old").write_text("x")
    result = run("store", "backup", str(tmp_path / "bk"))
    assert result.exit_code != 0
    assert "not empty" in result.output
    (tmp_path / "half").mkdir()
    result = run("store", "restore", str(tmp_path / "half"), "--database", "sg_nothing")
    assert result.exit_code != 0
    assert "manifest.json is missing" in result.output


def test_redis_is_backed_up_by_copying_its_rdb_file(tmp_path):
    """docs/operations.md: BGSAVE, copy dump.rdb, start a Redis on the copy."""
    stack = Stack(tmp_path / "logs")
    try:
        source = stack.redis(data_dir=tmp_path / "live")
        conn = redis_lib.Redis(port=source.port)
        conn.rpush("rq:queue:critical", "route-1", "route-2")
        before = conn.lastsave()
        time.sleep(1.1)  # LASTSAVE counts in seconds
        conn.bgsave()
        deadline = time.monotonic() + 10
        while conn.lastsave() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert conn.lastsave() != before, "BGSAVE did not finish"
        (tmp_path / "copy").mkdir()
        shutil.copy(tmp_path / "live" / "dump.rdb", tmp_path / "copy" / "dump.rdb")
        # The copy is loaded at start when there is no AOF beside it.
        port = free_port()
        stack._spawn("redis-copy", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                    "--dir", str(tmp_path / "copy"), "--appendonly", "no"],
                     port=port)
        restored = redis_lib.Redis(port=port)
        assert restored.lrange("rq:queue:critical", 0, -1) == [b"route-1", b"route-2"]
    finally:
        stack.stop()
