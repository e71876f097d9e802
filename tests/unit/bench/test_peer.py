"""The peer benchmark's own parts: the same work for every target, and tokens the peer can check."""

from __future__ import annotations

import base64
import json

import httpx
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_der_public_key

from bench import workload
from bench.peer import peer_tokens, same_work, token_issuer


def test_same_work_changes_only_the_two_patient_parameters_the_peer_refuses() -> None:
    before = workload.every_dashboard("http://x/fhir", ["pt-0001"], {"pt-0001": "t"})
    after = same_work(before)
    changed = {(a.url, b.url) for a, b in zip(before, after, strict=True) if a.url != b.url}
    assert {b.split("?")[0].rsplit("/", 1)[1] for _, b in changed} == {"MedicationRequest", "Appointment"}
    assert any("MedicationRequest?subject=Patient/pt-0001&status=active" in b for _, b in changed)
    assert any("Appointment?actor=Patient/pt-0001&date=ge" in b for _, b in changed)
    assert [a.headers for a in after] == [b.headers for b in before]


def test_the_issuer_serves_the_key_that_verifies_the_peers_tokens() -> None:
    with token_issuer() as (issuer, key):
        document = httpx.get(issuer, timeout=5).json()
        assert httpx.get(issuer + "/.well-known/openid-configuration", timeout=5).status_code == 200
        tokens = peer_tokens(issuer, key, ["pt-0001", "pt-0002"])
    public = load_der_public_key(base64.b64decode(document["public_key"]))
    head, body, signature = tokens["pt-0001"].split(".")
    pad = "=" * (-len(signature) % 4)
    public.verify(base64.urlsafe_b64decode(signature + pad), f"{head}.{body}".encode(),  # type: ignore[union-attr]
                  padding.PKCS1v15(), SHA256())
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert claims["iss"] == issuer and claims["patient_id"] == "pt-0001" and claims["scope"] == "patient/*.read"
    assert tokens["pt-0001"] != tokens["pt-0002"]
