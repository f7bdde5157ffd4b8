"""No DNA, no biometrics: SafeGrid refuses them (the Action Plan reserves DNA
collection to public security organs' own blood-sample system).

`refusal` names what a submission tried to send; the API answers 422 with it.
Text that merely mentions DNA is fine ("police took a DNA sample"); what is
refused is genetic or biometric data itself: sequences, STR profiles, or
fields meant to carry them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REFUSAL = ("SafeGrid never collects DNA or biometric data: only public security organs "
           "take DNA samples (Action Plan against Human Trafficking 2021-2030)")

# Field names a client might use to send such data.
_FIELDS = frozenset({
    "dna", "dna_profile", "dna_sequence", "genotype", "str_profile", "biometric",
    "biometrics", "fingerprint", "fingerprints", "face", "face_image", "iris", "voiceprint",
})
# A run of nucleotides long enough to be a read, not a word.
_SEQUENCE = re.compile(r"[ACGTacgt]{24,}")
# Forensic STR loci (CODIS core set and common kits) followed by allele numbers.
_STR_LOCUS = re.compile(
    r"\b(?:D3S1358|vWA|FGA|TH01|TPOX|CSF1PO|D5S818|D7S820|D8S1179|D13S317|D16S539|D18S51|"
    r"D21S11|D1S1656|D2S441|D2S1338|D10S1248|D12S391|D19S433|D22S1045|Penta ?[DE])"
    r"\s*[:=]?\s*\d{1,2}(?:\.\d)?", re.IGNORECASE)


def refusal(data: Mapping[str, object]) -> str | None:
    """Why this submission is refused, or None. Checks field names and every text value."""
    for key, value in data.items():
        if str(key).lower() in _FIELDS:
            return f"{REFUSAL} (field {key!r})"
        if isinstance(value, str) and carries_genetic_data(value):
            return f"{REFUSAL} (field {key!r} holds a DNA sequence or profile)"
        if isinstance(value, Mapping):
            nested = refusal(value)
            if nested:
                return nested
    return None


def carries_genetic_data(text: str) -> bool:
    """True for a DNA sequence or at least two STR loci with alleles (a profile)."""
    return bool(_SEQUENCE.search(text)) or len(_STR_LOCUS.findall(text)) >= 2


def redact(text: str) -> str:
    """The text with sequences and STR alleles removed (for SMS, which is kept, not refused)."""
    return _STR_LOCUS.sub("[已删除]", _SEQUENCE.sub("[已删除]", text))
