"""The one policy table: which resource types we serve, how, and how each ties to a patient.

Everything the gateway allows is listed here; anything absent is refused (deny by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ = "read"
VREAD = "vread"
HISTORY_INSTANCE = "history-instance"
SEARCH = "search-type"
CREATE = "create"
UPDATE = "update"

READS = frozenset({READ, VREAD, HISTORY_INSTANCE, SEARCH})
FULL = READS | {CREATE, UPDATE}

# Parameters valid on every search (FHIR "common" and result parameters).
COMMON_SEARCH_PARAMS = frozenset({"_id", "_lastUpdated", "_tag", "_profile", "_security"})
RESULT_PARAMS = frozenset(
    {"_count", "_sort", "_elements", "_summary", "_include", "_revinclude", "_total", "_format", "_pretty"}
)
# Search modifiers we can reason about; everything else (chains, type modifiers, :identifier) is refused.
SAFE_MODIFIERS = frozenset({"exact", "contains", "missing", "not", "text", "above", "below", "of-type"})


@dataclass(frozen=True)
class TypePolicy:
    name: str
    interactions: frozenset[str]
    # Top-level elements whose references put a resource in a patient's compartment (empty: shared type
    # such as Practitioner or Slot, visible to any caller whose scopes name it).
    compartment_fields: tuple[str, ...] = ()
    # The search parameter the gateway adds to every search made with a patient-bound token.
    patient_param: str | None = None
    search_params: frozenset[str] = field(default_factory=frozenset)
    # Interactions a patient-bound token may perform, each checked by a rule in fhir_gateway/writes.py.
    patient_writes: frozenset[str] = frozenset()

    @property
    def shared(self) -> bool:
        return not self.compartment_fields and self.name != "Patient"


def _p(*names: str) -> frozenset[str]:
    return frozenset(names)


_TYPES = [
    TypePolicy(
        "Patient",
        FULL,
        compartment_fields=("id",),
        patient_param="_id",
        search_params=_p("identifier", "birthdate", "name", "family", "given", "gender", "phone", "email",
                         "telecom", "address-postalcode", "general-practitioner", "active"),
        patient_writes=_p(UPDATE),
    ),
    TypePolicy(
        "Observation",
        FULL,
        compartment_fields=("subject", "performer"),
        patient_param="patient",
        search_params=_p("patient", "subject", "category", "code", "date", "status", "encounter",
                         "based-on", "value-quantity", "performer", "combo-code"),
        # create and update: entries of the patient's own health notebook only (symptoms, side effects,
        # questions for a visit); results the clinic recorded are never changed (PatientWrites._notebook).
        patient_writes=_p(CREATE, UPDATE),
    ),
    TypePolicy(
        "MedicationRequest",
        FULL,
        compartment_fields=("subject",),
        patient_param="patient",
        search_params=_p("patient", "subject", "status", "intent", "authoredon", "medication", "code",
                         "requester", "encounter", "identifier", "category"),
        patient_writes=_p(CREATE),
    ),
    TypePolicy(
        "Appointment",
        FULL,
        compartment_fields=("participant",),
        patient_param="patient",
        search_params=_p("patient", "actor", "date", "status", "slot", "practitioner", "identifier",
                         "service-type", "location"),
        patient_writes=_p(CREATE, UPDATE),
    ),
    TypePolicy(
        "Communication",
        FULL,
        compartment_fields=("subject", "sender", "recipient"),
        patient_param="subject",
        search_params=_p("subject", "patient", "sender", "recipient", "sent", "received", "part-of",
                         "status", "category", "identifier", "based-on"),
        # create: a message to their care team (with files); update: marking a message to them as read.
        patient_writes=_p(CREATE, UPDATE),
    ),
    # A file sent with a message: read by id only (never searched), and only within the record named by
    # its securityContext. Patients store files only as part of a message (a Communication create).
    TypePolicy("Binary", frozenset({READ}), ("securityContext",)),
    # create: an allergy the patient reports (always unconfirmed, recorded by them); what the clinic
    # recorded is never changed by a patient. update: staff confirm or refute a reported allergy
    # (rule: decision_writes.DecisionWrites).
    TypePolicy("AllergyIntolerance", READS | {CREATE, UPDATE}, ("patient", "recorder", "asserter"), "patient",
               _p("patient", "clinical-status", "verification-status", "category", "code", "date",
                  "criticality", "identifier"), patient_writes=_p(CREATE)),
    TypePolicy("Immunization", READS, ("patient",), "patient",
               _p("patient", "date", "vaccine-code", "status")),
    # Procedure: CompartmentDefinition/patient names `patient` (subject) and `performer`.
    TypePolicy("Procedure", READS, ("subject", "performer"), "patient",
               _p("patient", "subject", "code", "date", "status", "category", "encounter")),
    TypePolicy("Condition", READS, ("subject", "asserter"), "patient",
               _p("patient", "subject", "clinical-status", "category", "code", "onset-date", "encounter")),
    TypePolicy("DiagnosticReport", READS, ("subject",), "patient",
               _p("patient", "subject", "category", "code", "date", "status", "result", "encounter")),
    TypePolicy("DocumentReference", READS, ("subject", "author"), "patient",
               _p("patient", "subject", "type", "category", "date", "status", "encounter")),
    TypePolicy("Encounter", READS, ("subject",), "patient",
               _p("patient", "subject", "date", "status", "class", "type", "practitioner")),
    # create: staff confirm a card a patient asked to add or change (rule: decision_writes.DecisionWrites).
    TypePolicy("Coverage", READS | {CREATE}, ("beneficiary", "subscriber", "policyHolder", "payor"), "beneficiary",
               _p("beneficiary", "patient", "status", "subscriber", "payor")),
    # create: a patient's referral request (intent=proposal, to a specialty in the catalogue); staff accept
    # one (an order based on it) or decline it (update), rule: decision_writes.DecisionWrites.
    TypePolicy("ServiceRequest", READS | {CREATE, UPDATE}, ("subject", "performer"), "patient",
               _p("patient", "subject", "status", "category", "code", "authored", "intent", "requester",
                  "performer", "performer-type", "based-on", "priority", "encounter", "identifier"),
               patient_writes=_p(CREATE)),
    # A patient's answers to the clinic's forms: create (a draft or a sent form) and update (a draft saved
    # again or sent); only published forms, never changed once sent (rule: PatientWrites._form_answers).
    TypePolicy("QuestionnaireResponse", FULL, ("subject", "author"), "patient",
               _p("patient", "subject", "questionnaire", "status", "authored", "author", "encounter", "identifier",
                  "source"), patient_writes=_p(CREATE, UPDATE)),
    TypePolicy("MedicationDispense", READS, ("subject", "receiver"), "patient",
               _p("patient", "subject", "status", "prescription", "medication", "code", "whenhandedover",
                  "whenprepared", "type", "performer", "identifier")),
    # The care team, forms to fill in and billing. Task is not in R4's patient compartment; it is tied to
    # the patient it is for (Task.for, search parameter `patient`).
    TypePolicy("CareTeam", READS, ("subject", "participant"), "patient",
               _p("patient", "subject", "status", "category", "participant", "date", "encounter", "identifier")),
    # create/update: staff only (the inbox's work items, rule: staff_writes.StaffWrites._work_item).
    TypePolicy("Task", READS | {CREATE, UPDATE}, ("for", "owner"), "patient",
               _p("patient", "subject", "status", "code", "focus", "owner", "authored-on", "modified", "intent",
                  "business-status", "period", "priority", "requester", "part-of", "based-on", "identifier")),
    TypePolicy("Account", READS, ("subject",), "patient",
               _p("patient", "subject", "status", "type", "identifier", "owner", "period", "name")),
    TypePolicy("Invoice", READS, ("subject", "recipient"), "patient",
               _p("patient", "subject", "status", "date", "account", "identifier", "issuer", "participant",
                  "recipient", "type", "totalnet", "totalgross")),
    TypePolicy("ChargeItem", READS, ("subject",), "patient",
               _p("patient", "subject", "code", "account", "context", "occurrence", "entered-date",
                  "performer-actor", "identifier", "service")),
    # PaymentNotice and PaymentReconciliation are not readable: neither is in R4's patient compartment nor
    # has a patient search parameter, so as shared types every caller would see every patient's payments.
    # A patient sees what they owe and what is settled on their Invoices. They may *create* a
    # PaymentReconciliation only as a request to pay one of their own open statements: the rule
    # (writes.PatientWrites._pay) charges the card token through the payment provider and writes the
    # PaymentReconciliation, a PaymentNotice and the settled Invoice itself, in one transaction.
    TypePolicy("PaymentReconciliation", frozenset({CREATE}), patient_writes=_p(CREATE)),
    TypePolicy("RelatedPerson", READS, ("patient",), "patient",
               _p("patient", "name", "relationship", "active", "identifier")),
    TypePolicy("AuditEvent", frozenset({READ, SEARCH}), ("entity", "agent"), "patient",
               _p("patient", "date", "type", "subtype", "outcome", "entity", "agent", "action")),
    # Shared, non-patient types: the care team, scheduling and forms.
    TypePolicy("Practitioner", READS, search_params=_p("name", "family", "given", "identifier", "active")),
    TypePolicy("PractitionerRole", READS,
               search_params=_p("practitioner", "organization", "role", "specialty", "active", "location",
                                "identifier")),
    TypePolicy("Organization", READS, search_params=_p("name", "identifier", "active", "type", "partof")),
    TypePolicy("Slot", READS, search_params=_p("schedule", "start", "status", "service-type", "appointment-type",
                                               "specialty")),
    TypePolicy("Schedule", READS, search_params=_p("actor", "active", "date", "service-type", "specialty")),
    TypePolicy("Questionnaire", READS, search_params=_p("name", "title", "status", "url", "version", "context",
                                                        "context-type", "code", "identifier")),
]

@dataclass(frozen=True)
class PatientOperation:
    """A whole-record operation on one Patient, served like a read of that Patient."""

    definition: str  # the OperationDefinition's canonical URL, for the CapabilityStatement
    params: tuple[str, ...] = ()  # the parameters passed on to the EHR


PATIENT_OPERATIONS = {
    "everything": PatientOperation("http://hl7.org/fhir/OperationDefinition/Patient-everything",
                                   ("_count", "_since", "_type")),
    # The International Patient Summary: a document Bundle; an EHR without it gets a clean 501.
    "summary": PatientOperation("http://hl7.org/fhir/uv/ips/OperationDefinition/summary"),
}

# Types never served on their own but carried inside the answers of operations we serve (the $summary
# document): listed so that what comes back is checked against the compartment like everything else.
_CARRIED = [
    TypePolicy("Composition", frozenset(), ("subject", "author", "attester")),
    TypePolicy("MedicationStatement", frozenset(), ("subject",)),
    TypePolicy("Procedure", frozenset(), ("subject", "performer")),
    TypePolicy("DeviceUseStatement", frozenset(), ("subject",)),
    TypePolicy("Device", frozenset(), ("patient",)),
    TypePolicy("CarePlan", frozenset(), ("subject",)),
    TypePolicy("ClinicalImpression", frozenset(), ("subject",)),
    TypePolicy("Consent", frozenset(), ("patient",)),
    TypePolicy("Medication", frozenset()),
]

POLICIES: dict[str, TypePolicy] = {t.name: t for t in _TYPES}
CARRIED_POLICIES: dict[str, TypePolicy] = {**POLICIES, **{t.name: t for t in _CARRIED}}
COMPARTMENT_TYPES = frozenset(t.name for t in _TYPES if not t.shared)

# _include targets a patient-bound caller may ask for: parameters that point at the patient
# themselves or at shared types. Results are still checked one by one.
PATIENT_SAFE_INCLUDE_PARAMS = frozenset(
    {"patient", "subject", "performer", "requester", "practitioner", "medication", "actor", "author",
     "asserter", "recorder", "organization", "schedule", "slot", "general-practitioner", "sender",
     "recipient", "location", "questionnaire", "account", "participant", "focus", "prescription", "owner"}
)


def policy_for(resource_type: str) -> TypePolicy | None:
    """The policy of a type we serve (read, search, write), or None."""
    return POLICIES.get(resource_type)


def content_policy_for(resource_type: str) -> TypePolicy | None:
    """The policy a resource in an answer is checked against: a served type or one operations carry."""
    return CARRIED_POLICIES.get(resource_type)
