"""The broker's internal entity form: what the store keeps and the query engine reads.

An entity is a plain dict, with every user term already expanded to its IRI:

    {
      "id": "urn:ngsi-ld:Streetlight:1",
      "type": ["https://smartdatamodels.org/dataModel.Streetlighting/Streetlight"],
      "scope": ["/Stockholm/Kungsholmen"],            # optional
      "createdAt": "2026-11-25T06:00:00.000000Z",
      "modifiedAt": "2026-11-25T06:00:00.000000Z",
      "attrs": {
        "https://smartdatamodels.org/dataModel.Streetlighting/powerState": [
          {"type": "Property", "value": "on", "observedAt": "...",
           "createdAt": "...", "modifiedAt": "...",
           "https://.../sub": {"type": "Property", "value": 3}},     # a sub-attribute
          {"type": "Property", "value": "off", "datasetId": "urn:ngsi-ld:Dataset:b"},
        ],
      },
    }

Each attribute holds a list of instances, at most one per ``datasetId`` (the default
instance has none). An instance keeps the NGSI-LD member names of its kind (``value``,
``object``, ``languageMap``, ``vocab``, ``valueList``, ``objectList``, ``json``) plus the
reserved members below; every other key is a sub-attribute, itself one instance dict.
Property values are kept verbatim (JSON values are not JSON-LD expanded) so that a
client gets back what it stored; ``vocab`` values and ``objectType`` are expanded IRIs.
"""

from __future__ import annotations

from typing import Any

Entity = dict[str, Any]
Instance = dict[str, Any]

PROPERTY = "Property"
RELATIONSHIP = "Relationship"
GEO_PROPERTY = "GeoProperty"
LANGUAGE_PROPERTY = "LanguageProperty"
VOCAB_PROPERTY = "VocabProperty"
LIST_PROPERTY = "ListProperty"
LIST_RELATIONSHIP = "ListRelationship"
JSON_PROPERTY = "JsonProperty"

# The member that carries the value of each attribute kind.
VALUE_MEMBER: dict[str, str] = {
    PROPERTY: "value",
    GEO_PROPERTY: "value",
    RELATIONSHIP: "object",
    LANGUAGE_PROPERTY: "languageMap",
    VOCAB_PROPERTY: "vocab",
    LIST_PROPERTY: "valueList",
    LIST_RELATIONSHIP: "objectList",
    JSON_PROPERTY: "json",
}
ATTRIBUTE_TYPES = frozenset(VALUE_MEMBER)

# Shown only with options=sysAttrs; expiresAt is given by clients (transient data).
SYSTEM_MEMBERS = frozenset({"createdAt", "modifiedAt", "deletedAt", "expiresAt"})
# Non-reified members of the ngsildproof Property (clause 4.5.2.2).
SEALED_MEMBERS = frozenset({"entityIdSealed", "entityTypeSealed"})
# Marks an instance of an update fragment that NGSI-LD null asked to remove.
DELETE = "@delete"
# Members of an instance that are not sub-attributes.
RESERVED_MEMBERS = frozenset(VALUE_MEMBER.values()) | SYSTEM_MEMBERS | {
    "type", "observedAt", "unitCode", "datasetId", "objectType", "lang",
    "previousValue", "previousObject", "previousLanguageMap", "previousVocab",
    "previousValueList", "previousObjectList", "previousJson", "instanceId", "valueType", DELETE,
} | SEALED_MEMBERS
# Top-level entity members that are not attributes.
ENTITY_MEMBERS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt",
                            "expiresAt",
                            "attrs", "@context"})


def value_of(instance: Instance) -> Any:
    """The value an instance carries, whatever its kind."""
    return instance.get(VALUE_MEMBER.get(instance.get("type", PROPERTY), "value"))


def sub_attributes(instance: Instance) -> dict[str, Instance]:
    """The sub-attributes of an instance, by expanded name."""
    return {k: v for k, v in instance.items() if k not in RESERVED_MEMBERS}
