"""Caregiver (proxy) links: a patient invites, the caregiver enrols, the patient can withdraw.

Each link is backed by a RelatedPerson in the EHR (created idempotently with If-None-Exist on a
portal identifier); withdrawing marks it inactive and revokes the caregiver's live grants at once.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request

from locales import N_
from mappers.references import parse_reference
from web.i18n import gettext as _
from web.i18n import ngettext

from .context import Ctx, EhrUnavailable, log
from .factors import EMAIL_RE
from .models import Account, ProxyLink

PROXY_ID_SYSTEM = "http://hospital.example.org/portal-proxy"
ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
# The English names (also the RelatedPerson's coding display in the EHR); pages translate them when shown.
RELATIONSHIPS: dict[str, str] = {
    "PRN": N_("Parent"),
    "CHILD": N_("Child"),
    "SPS": N_("Spouse"),
    "DOMPART": N_("Domestic partner"),
    "SIB": N_("Sibling"),
    "GRPRN": N_("Grandparent"),
    "GUARD": N_("Guardian"),
    "FAMMEMB": N_("Other family member"),
    "FRND": N_("Friend"),
    "O": N_("Other"),
}


class ProxyError(ValueError):
    """A request a person can fix (shown next to the field). `message` is the English message id: a page shows
    it translated, the JSON API as it is."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _related_person(link_id: str, patient_id: str, name: str, email: str | None, relationship: str) -> dict:
    resource: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "active": True,
        "identifier": [{"system": PROXY_ID_SYSTEM, "value": link_id}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "relationship": [
            {"coding": [{"system": ROLE_SYSTEM, "code": relationship, "display": RELATIONSHIPS[relationship]}]}
        ],
        "name": [{"text": name}],
    }
    if email:
        resource["telecom"] = [{"system": "email", "value": email}]
    return resource


def _id_from(response: Any) -> str | None:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("resourceType") == "RelatedPerson" and body.get("id"):
            return str(body["id"])
    except ValueError:
        pass
    location = response.headers.get("Location") or response.headers.get("Content-Location") or ""
    ref = parse_reference(location, "RelatedPerson")
    return ref.id if ref else None


async def create_related_person(ctx: Ctx, link_id: str, patient_id: str, name: str, email: str | None,
                                relationship: str) -> str:
    body = _related_person(link_id, patient_id, name, email, relationship)
    try:
        response = await ctx.deps.ehr.request(
            "POST", "RelatedPerson", json=body,
            headers={"If-None-Exist": f"identifier={PROXY_ID_SYSTEM}|{link_id}", "Prefer": "return=representation"},
        )
    except Exception as exc:  # transport errors and EHR refusals look the same to a person
        raise EhrUnavailable("RelatedPerson") from exc
    related_person_id = _id_from(response) if response.status_code < 400 else None
    if related_person_id is None:
        log.warning("EHR refused RelatedPerson create status=%s", response.status_code)
        raise EhrUnavailable("RelatedPerson")
    return related_person_id


async def deactivate_related_person(ctx: Ctx, related_person_id: str) -> bool:
    try:
        resource = await ctx.deps.ehr.read("RelatedPerson", related_person_id)
        if resource is None:
            return True
        if resource.get("active") is False:
            return True
        resource["active"] = False
        headers = {}
        version = (resource.get("meta") or {}).get("versionId")
        if version:
            headers["If-Match"] = f'W/"{version}"'
        response = await ctx.deps.ehr.request("PUT", f"RelatedPerson/{related_person_id}", json=resource,
                                              headers=headers)
        return response.status_code < 400
    except Exception as exc:
        log.warning("EHR RelatedPerson deactivate failed: %s", type(exc).__name__)
        return False


async def invite_caregiver(
    ctx: Ctx, request: Request | None, patient: Account, *, name: str, email: str, relationship: str,
    display_name: str | None,
) -> ProxyLink:
    name = " ".join(name.split())
    email = email.strip()
    if not name or len(name) > 200:
        raise ProxyError("name", N_("Enter the caregiver's name."))
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise ProxyError("email", N_("Enter a valid e-mail address."))
    if relationship not in RELATIONSHIPS:
        raise ProxyError("relationship", N_("Choose how this person is related to you."))
    if patient.kind != "patient" or not patient.patient_id:
        raise ProxyError("account", N_("Only patients can share their own record."))
    link_id = uuid.uuid4().hex
    await ctx.audit(request, "proxy.grant", "success", account_id=patient.id, fhir_user=patient.fhir_user,
                    patient_id=patient.patient_id, detail=f"invited link={link_id}")
    related_person_id = await create_related_person(ctx, link_id, patient.patient_id, name, email, relationship)
    invitation, code = await ctx.store.create_invitation(
        kind="caregiver", patient_id=patient.patient_id, ttl_seconds=ctx.settings.invitation_ttl_seconds,
        created_by=patient.fhir_user, email=email, proxy_link_id=link_id,
    )
    link = ProxyLink(id=link_id, patient_id=patient.patient_id, related_person_id=related_person_id, status="invited",
                     caregiver_name=name, relationship=relationship, caregiver_email=email,
                     invitation_id=invitation.id, patient_display=display_name)
    await ctx.store.save_proxy(link)
    url = f"{ctx.deps.public_url.rstrip('/')}/auth/enroll?code={code}"
    # In the language of the page the patient invited from: the caregiver has no account (nor language) yet.
    days = ctx.settings.invitation_ttl_seconds // 86400
    await ctx.sender.send(
        "email", email, _("You have been invited to help with a patient's health record"),
        ngettext("You have been invited as a caregiver in the %(portal)s. To accept, open %(url)s (valid for "
                 "%(num)s day).",
                 "You have been invited as a caregiver in the %(portal)s. To accept, open %(url)s (valid for "
                 "%(num)s days).", days) % {"portal": ctx.settings.totp_issuer, "url": url, "num": days},
        purpose="caregiver-invitation",
    )
    return link


async def withdraw(ctx: Ctx, request: Request | None, actor: Account, link: ProxyLink) -> int:
    """End a caregiver's access now: link gone, grants revoked, RelatedPerson inactive. Returns grants revoked."""
    await ctx.audit(request, "proxy.withdraw", "success", account_id=actor.id, fhir_user=actor.fhir_user,
                    patient_id=link.patient_id, on_behalf_of=link.related_person_id,
                    detail=f"link={link.id} caregiver={link.caregiver_account_id}")
    link.status = "withdrawn"
    await ctx.store.save_proxy(link)
    if link.invitation_id:
        await ctx.store.revoke_invitation(link.invitation_id)
    revoked = 0
    if link.caregiver_account_id:
        revoked = await ctx.grants.revoke_for(link.caregiver_account_id, link.patient_id)
    if not await deactivate_related_person(ctx, link.related_person_id):
        # Access is already gone on our side; the EHR flag is bookkeeping that staff can fix.
        log.warning("proxy link=%s withdrawn but RelatedPerson/%s still active in the EHR",
                    link.id, link.related_person_id)
    return revoked
