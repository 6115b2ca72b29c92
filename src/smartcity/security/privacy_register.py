"""The public register of personal data, as Smart Data Models ``PrivacyObject``
entities (NGSI-LD, normalized): what the city's sensors and services collect about
people, why, on what legal basis, and for how long."""

from __future__ import annotations

from typing import Any

from smartcity.core.ngsild.context import CORE_CONTEXT_URL
from smartcity.security.policy import PersonalData


def _property(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def privacy_object(entry: PersonalData, owner: str) -> dict[str, Any]:
    attributes = "every attribute" if "*" in entry.attributes else \
        ", ".join(entry.attributes)
    return {
        "id": f"urn:ngsi-ld:PrivacyObject:{entry.type}",
        "type": "PrivacyObject",
        "name": _property(entry.type),
        "description": _property(f"Personal data in {entry.type} entities: {attributes}; "
                                 f"the resident is named by {entry.subject}"),
        "isPersonalData": _property(True),
        "purpose": _property(entry.purpose),
        "legitimateInterest": _property(entry.legal_basis),
        "retentionPeriod": _property(entry.retention),
        "category": _property(list(entry.category)),
        "recipientList": _property(list(entry.recipients)),
        "owner": _property([owner]),
        "personalAttributes": _property(list(entry.attributes)),
        "crossborderTransfer": _property("None"),
    }


def register_document(entries: tuple[PersonalData, ...], owner: str) -> list[dict[str, Any]]:
    return [{**privacy_object(entry, owner), "@context": CORE_CONTEXT_URL}
            for entry in entries]
