"""SafeGrid refuses DNA and biometric data (Action Plan: reserved to public security organs)."""

from __future__ import annotations

import pytest

from gateway.privacy.genetic import carries_genetic_data, redact, refusal
from gateway.records.reports import Report
from tests.helpers import auth, token_of

PROFILE = "D8S1179: 13, D21S11: 30, D7S820 10 vWA 17"
SEQUENCE = "ACGTTGCAACGTTGCAACGTTGCAAGGT"


@pytest.mark.parametrize(
    "body",
    [
        {"dna": "anything"},
        {"fingerprint": "base64..."},
        {"details": f"孩子的DNA分型 {PROFILE}"},
        {"details": f"测序结果 {SEQUENCE}"},
    ],
)
def test_the_api_refuses_dna_and_biometrics_with_a_clear_422(client, county, body):
    resp = client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 刘芳")),
                       json={"client_id": "dna-00000001", "category": "CHILD", **body})
    assert resp.status_code == 422
    assert "DNA" in str(resp.json["errors"])
    assert Report.objects.count() == 0


def test_mentioning_dna_is_fine():
    assert refusal({"details": "警方说会给孩子采血做DNA比对"}) is None
    assert not carries_genetic_data("DNA")


def test_redact_removes_profiles_and_sequences():
    cleaned = redact(f"孩子 {PROFILE} {SEQUENCE} 在车站")
    assert not carries_genetic_data(cleaned)
    assert "在车站" in cleaned
