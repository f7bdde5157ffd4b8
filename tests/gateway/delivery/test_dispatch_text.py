"""Officers' free text on a clue (notes, transfer and closing reasons) is sealed at rest."""

from __future__ import annotations

import hashlib

from gateway.privacy import audit
from gateway.privacy.crypto import Keyring
from grid.documents import Dispatch
from tests.gateway.delivery.test_workflow import NT, PJ, WF, act, dispatch_id, officers  # noqa: F401
from tests.gateway.privacy.test_phonebook import everything_stored

NOTE = "受害人李某某，电话13912345678，住村东头"
WHY_TRANSFER = "嫌疑人王某在南台租房"
WHY_REJECT = "王某已搬离南台"
WHY_CLOSE = "经核实为亲属探亲，非拐卖"


def work_the_clue(client, officers, dispatch_id):  # noqa: F811
    assert act(client, officers[WF], dispatch_id, "notes", text=NOTE).status_code == 200
    act(client, officers[WF], dispatch_id, "transfer", to_station=NT, reason=WHY_TRANSFER)
    act(client, officers[NT], dispatch_id, "reject-transfer", reason=WHY_REJECT)
    act(client, officers[WF], dispatch_id, "acknowledge")
    return act(client, officers[WF], dispatch_id, "close", outcome="confirmed_no_crime",
               reason=WHY_CLOSE)


def test_officers_read_their_text_but_the_store_holds_it_sealed(client, officers,  # noqa: F811
                                                                 dispatch_id):  # noqa: F811
    closed = work_the_clue(client, officers, dispatch_id)
    assert closed.status_code == 200, closed.json
    shown = client.get(f"/api/v1/dispatches/{dispatch_id}", headers=officers[WF]).json
    assert [n["text"] for n in shown["notes"]] == [NOTE]
    assert (shown["transfer_rejection_reason"], shown["outcome_reason"]) == (WHY_REJECT,
                                                                             WHY_CLOSE)
    stored = everything_stored()
    for text in (NOTE, WHY_TRANSFER, WHY_REJECT, WHY_CLOSE, "13912345678"):
        assert text not in stored
    raw = Dispatch._get_collection().find_one()
    assert raw["notes"][0]["text"].startswith("sg1:")
    assert raw["outcome_reason"].startswith("sg1:")


def test_the_audit_log_keeps_a_digest_of_what_was_said(client, officers,  # noqa: F811
                                                       dispatch_id):  # noqa: F811
    work_the_clue(client, officers, dispatch_id)
    [entry] = audit.AuditEntry.objects(action="dispatch.close")
    assert "reason" not in entry.details
    assert entry.details["reason_sha256"] == hashlib.sha256(WHY_CLOSE.encode()).hexdigest()
    assert audit.verify().ok


def test_reencrypt_moves_notes_in_lists_to_the_new_key(client, officers, dispatch_id,  # noqa: F811
                                                       run, monkeypatch, settings):
    work_the_clue(client, officers, dispatch_id)
    new_keys = f"k2:{Keyring.generate_key()},{settings.data_keys}"
    monkeypatch.setenv("SAFEGRID_DATA_KEYS", new_keys)
    assert run("reencrypt").exit_code == 0
    raw = Dispatch._get_collection().find_one()
    assert raw["notes"][0]["text"].startswith("sg1:k2:")
    assert raw["outcome_reason"].startswith("sg1:k2:")
    assert run("reencrypt").output.strip().endswith("re-encrypted 0 values")
    monkeypatch.setenv("SAFEGRID_DATA_KEYS", new_keys.split(",")[0])  # the old key retired
    run("audit", "verify")  # rebinds this process to the new keyring alone
    shown = client.get(f"/api/v1/dispatches/{dispatch_id}", headers=officers[WF]).json
    assert shown["notes"][0]["text"] == NOTE

