"""What the audit log is told: callers' writes, their reads of personal data, their
administrative acts and the acts refused to them; each with who, what, when and why.

The platform's own work (measurements of devices, derived state) is not recorded entry
by entry: it follows from acts that are (provisioning a device, a caller's write).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smartcity.core.events import EntityChange
from smartcity.security.audit import AuditLog
from smartcity.security.guard import Shown, subjects_of
from smartcity.security.policy import Register, local_name
from smartcity.security.principal import Principal, current

# Entity ids named in one entry at most; the count says how many there were.
MAX_TARGETS = 1000


def _targets(ids: Sequence[str]) -> tuple[str, dict[str, Any]]:
    target = ids[0] if len(ids) == 1 else f"{len(ids)} entities"
    return target, {"entities": list(ids[:MAX_TARGETS]), "count": len(ids)}


class AuditActs:
    def __init__(self, log: AuditLog, register: Register) -> None:
        self.log = log
        self.register = register

    def record(self, action: str, what: str, target: str = "", *, tenant: str = "",
               subjects: Iterable[str] = (), purpose: str = "", outcome: str = "ok",
               detail: Mapping[str, Any] | None = None,
               principal: Principal | None = None) -> None:
        """Record an act of the caller (the running request's principal)."""
        principal = principal or current()
        # A subject is an entity id or a value a client wrote: one holding NUL (which
        # the log's index cannot) is kept recognisable rather than refused.
        self.log.record(principal.subject, action, what, target, tenant=tenant,
                        roles=principal.roles, purpose=purpose,
                        subjects=[s.replace("\x00", "\ufffd") for s in subjects],
                        outcome=outcome, detail=detail)

    def personal_read(self, principal: Principal, tenant: str, shown: list[Shown]) -> None:
        """One entry for the personal data one read showed a caller."""
        target, detail = _targets([entity_id for entity_id, *_ in shown])
        detail["attributes"] = sorted({local_name(a) for _, _, attrs, _ in shown
                                       for a in attrs})
        self.record("read", "personal data", target, tenant=tenant,
                    subjects={s for _, subjects, _, _ in shown for s in subjects},
                    purpose="; ".join(sorted({p for *_, p in shown if p})),
                    detail=detail, principal=principal)

    def written(self, tenant: str, changes: Sequence[EntityChange]) -> None:
        """One entry for what one write of a caller changed."""
        principal = current()
        if principal.system:
            return
        target, detail = _targets([c.entity_id for c in changes])
        detail["changes"] = sorted({c.kind for c in changes})
        subjects: set[str] = set()
        for entity in (e for c in changes for e in (c.entity, c.previous) if e is not None):
            names = self.register.of(entity.get("type", ())).subjects
            if names:
                subjects.update(subjects_of(entity, names))
        self.record("write", "entities", target, tenant=tenant, subjects=subjects,
                    detail=detail, principal=principal)
