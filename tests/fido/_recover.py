"""Test helper: every (enrollment, R) candidate of a key as a list, optionally stopping at the
first accepted R. The library itself uses Fido2Backend.recover_responses."""

from __future__ import annotations

from sealcodes.memory import wipe


def recover(backend, challenge, interaction, credential_id=None, accept=None) -> list:
    candidates = []
    for enrollment, response in backend.candidates(challenge, interaction, credential_id):
        candidate = {"enrollment": enrollment, "response": response}
        if accept is not None and accept(response):
            for other in candidates:
                wipe(other["response"])
            return [candidate]
        candidates.append(candidate)
    return candidates
