"""The internal form of a subscription: what the store keeps and the matcher reads.

A subscription is a plain dict, names already expanded with the @context it was
created with (kept in ``context`` to compact its notifications):

    {
      "id": "urn:ngsi-ld:Subscription:...", "tenant": "",
      "subscriptionName": "...", "description": "...",              # optional
      "entities": [{"type": "<type IRI>", "id": "...", "idPattern": "..."}],  # or absent
      "watchedAttributes": ["<attr IRI>", ...],                        # or absent
      "notificationTrigger": ["entityCreated", "attributeUpdated", ...],
      "q": "...", "scopeQ": "...", "lang": "...",                      # raw text, optional
      "geoQ": {"georel": "...", "geometry": "...", "coordinates": [...],
               "geoproperty": "<raw name>"},                           # optional
      "notification": {
        "attributes": ["<attr IRI>", ...],                             # or absent
        "format": "normalized" | "keyValues" | "concise",
        "showChanges": bool, "sysAttrs": bool,
        "endpoint": {"uri": "...", "accept": "application/json",
                     "receiverInfo": [{"key": "...", "value": "..."}],
                     "notifierInfo": [{"key": "...", "value": "..."}]},
      },
      "timeInterval": seconds | absent, "throttling": seconds | absent,
      "expiresAt": "DateTime" | absent, "isActive": bool,
      "context": <the @context value of the creating request, or None for the core>,
      "createdAt": "...", "modifiedAt": "...",
      # delivery status, kept current by the notifier:
      "timesSent": int, "timesFailed": int,
      "lastNotification": "...", "lastSuccess": "...", "lastFailure": "...",
    }

``status`` (active, paused, expired) is derived from ``isActive`` and ``expiresAt`` when
the subscription is shown, never stored.
"""

from __future__ import annotations

from typing import Any

Subscription = dict[str, Any]

ENTITY_TRIGGERS = ("entityCreated", "entityUpdated", "entityDeleted")
ATTRIBUTE_TRIGGERS = ("attributeCreated", "attributeUpdated", "attributeDeleted")
TRIGGERS = ENTITY_TRIGGERS + ATTRIBUTE_TRIGGERS
# Clause 5.2.12: without notificationTrigger, a subscription fires on these.
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")


def status_of(subscription: Subscription, now: str) -> str:
    """active, paused or expired (clause 5.2.12), derived when shown."""
    expires = subscription.get("expiresAt")
    if expires is not None and expires <= now:
        return "expired"
    return "active" if subscription.get("isActive", True) else "paused"
