"""The audit log: who did what to which data, for what purpose, and whose personal data it
touched; kept so that changing it afterwards shows.

The store numbers entries 1, 2, 3 ... and chains each to the one before: hash n =
sha256(hash n-1 in hex + the canonical JSON of entry n with its number), the first
following 64 zeros. Altering, removing or reordering a stored entry breaks the chain
there. Removing the newest entries leaves a chain that holds, so the store also keeps
its head (the last number and hash), written in the transaction of every append:
``verify`` finds a log that ends before its head. Whoever can rewrite the whole chain
from some entry on, head included, escapes both checks; to catch that, keep the head
``smartcity audit verify`` prints somewhere the database's administrators cannot write.

Recording is synchronous and cheap: entries wait in memory and a background task writes
them in batches, so a request never waits for the audit log, and entries recorded while
the database is away are written once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import orjson

from smartcity.core.ngsild.storage import EntityStore

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # the hash the first entry follows


@dataclass(frozen=True)
class AuditEntry:
    """One act: ``actor`` (a subject such as "user:alice", "client:xyz", "system") did
    ``action`` ("read", "write", "administer", "login", "denied", ...) on ``what``
    ("entity", "subscription", "user", "token", ...) named ``target``, with ``outcome``.
    ``subjects`` are the entity ids of the residents whose personal data the act
    touched; ``at`` is UTC with microseconds."""

    at: str
    actor: str
    action: str
    what: str
    target: str = ""
    tenant: str = ""
    roles: list[str] = field(default_factory=list)
    purpose: str = ""
    subjects: list[str] = field(default_factory=list)
    outcome: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRow:
    """A stored entry: its number, its hash and its JSON document as stored."""

    seq: int
    hash: str
    document: bytes

    @cached_property
    def entry(self) -> AuditEntry:
        """The entry; ValueError when the document is not one (it was altered)."""
        try:
            return AuditEntry(**orjson.loads(self.document))
        except (ValueError, TypeError) as exc:  # not JSON, not an object, other members
            raise ValueError(f"entry {self.seq} cannot be read: {exc}") from None


def encode(entry: AuditEntry) -> bytes:
    """The document a store keeps of an entry."""
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def chain(previous_hash: str, seq: int, entry: AuditEntry) -> str:
    """The hash of entry ``seq``, which follows the entry hashed ``previous_hash``."""
    canonical = orjson.dumps({**vars(entry), "seq": seq}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(previous_hash.encode() + canonical).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """How far the log holds: ``entries`` 1 to ``entries`` are intact, the last of them
    hashed ``head``; ``broken_at`` is the first entry that is not, and ``reason`` why."""

    entries: int = 0
    head: str = GENESIS
    broken_at: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


START = VerifyResult()  # the check of no entries at all


def verify(rows: Iterable[AuditRow], after: VerifyResult = START) -> VerifyResult:
    """Check rows in number order, going on from where ``after`` (the check of the rows
    before them) ended; stops at the first broken one."""
    walked = after
    for row in rows:
        expected = walked.entries + 1
        if row.seq > expected:
            missing = f"entry {expected} is" if row.seq == expected + 1 else \
                f"entries {expected} to {row.seq - 1} are"
            return replace(walked, broken_at=expected, reason=f"{missing} missing (deleted)")
        try:
            hashed = chain(walked.head, row.seq, row.entry)
        except ValueError as exc:
            return replace(walked, broken_at=row.seq, reason=f"{exc} (altered)")
        # The hash covers the entry's number and its predecessor's hash: an entry moved
        # to another place in the log no longer matches either.
        if hashed != row.hash:
            return replace(walked, broken_at=row.seq, reason=f"entry {row.seq} does not "
                           "match its hash: it was altered, or moved (reordered)")
        walked = VerifyResult(row.seq, row.hash)
    return walked


def verify_head(walked: VerifyResult, head: tuple[int, str]) -> VerifyResult:
    """A check of the whole log compared with the head the store kept apart."""
    seq, hashed = head
    if walked.entries < seq:
        return replace(walked, broken_at=walked.entries + 1, reason=f"the log ends at "
                       f"entry {walked.entries} but its head is entry {seq}: the newest "
                       "entries were deleted")
    if walked.entries > seq:
        return replace(walked, broken_at=seq + 1, reason=f"the head names entry {seq} but "
                       f"the log goes on to entry {walked.entries}: the head was altered")
    if walked.head != hashed:
        return replace(walked, broken_at=seq, reason=f"entry {seq} differs from the head "
                       "kept apart: it, or the head, was altered")
    return walked


class AuditLog:
    """Records entries in memory and writes them to the store in the background."""

    # Entries waiting while the database is away are bounded: a long outage must not take
    # the process, and the service it gives, down with it. The oldest go first: the acts
    # of the outage's last hours are what an inquiry into it needs most. The log itself
    # then says how many were lost (action "lost" by "system").
    MOST_WAITING = 100_000

    def __init__(self, store: EntityStore, now: Callable[[], str], *,
                 interval: float = 0.05, batch: int = 500) -> None:
        self.store = store
        self.now = now
        self.interval = interval  # seconds between writes
        self.batch = batch  # entries in one write; this many waiting start one at once
        self._waiting: deque[AuditEntry] = deque()
        self._lost = 0  # entries dropped since the log last said so
        self._due = asyncio.Event()  # set when a batch waits, or to stop
        self._stopping = asyncio.Event()
        self._writing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def record(self, actor: str, action: str, what: str, target: str = "", *,
               tenant: str = "", roles: Iterable[str] = (), purpose: str = "",
               subjects: Iterable[str] = (), outcome: str = "ok",
               detail: Mapping[str, Any] | None = None) -> None:
        """Record an act, stamped now; raises TypeError at once when ``detail`` is not
        JSON, rather than leave an entry the store cannot take."""
        entry = AuditEntry(self.now(), actor, action, what, target, tenant, sorted(roles),
                           purpose, list(dict.fromkeys(subjects)), outcome, dict(detail or {}))
        encode(entry)  # only to raise now, not when writing
        if any("\x00" in subject for subject in entry.subjects):
            # PostgreSQL indexes subjects as text, which cannot hold NUL.
            raise ValueError("an audit subject cannot hold a NUL character")
        self._waiting.append(entry)
        self._drop_oldest()
        if len(self._waiting) >= self.batch:
            self._due.set()

    def _drop_oldest(self) -> None:
        excess = len(self._waiting) - self.MOST_WAITING
        if excess <= 0:
            return
        if not self._lost:
            log.error("the audit log holds %d entries it could not write; it drops the "
                      "oldest until the database takes them", self.MOST_WAITING)
        for _ in range(excess):
            self._waiting.popleft()
        self._lost += excess

    def start(self) -> None:
        """Write recorded entries in the background, every ``interval`` seconds."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop writing in the background, after writing every entry recorded."""
        if self._task is not None:
            self._stopping.set()
            self._due.set()
            await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.exception("%d audit entries are lost: the database did not take them",
                          len(self._waiting))

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self.interval)
            self._due.clear()
            try:
                await self.flush()
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("the audit log cannot be written (%s); %d entries wait",
                                exc, len(self._waiting))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), min(0.5 * failures, 5.0))
            else:
                failures = 0

    async def flush(self) -> None:
        """Write every recorded entry; on an error of the store, those not written wait
        for the next write and the error is raised."""
        async with self._writing:
            while self._waiting or self._lost:
                lost = self._lost
                said = [AuditEntry(self.now(), "system", "lost", "audit",
                                   detail={"entries": lost})] if lost else []
                taken = [self._waiting.popleft()
                         for _ in range(min(self.batch, len(self._waiting)))]
                try:
                    await self.store.append_audit(said + taken)
                except BaseException:
                    self._waiting.extendleft(reversed(taken))
                    self._drop_oldest()
                    raise
                self._lost -= lost  # more may have been dropped meanwhile

    async def verify(self, batch: int = 5000) -> VerifyResult:
        """Check the whole stored log, ``batch`` entries a read, and its head."""
        walked = await self._walk(START, batch)
        if not walked.intact:
            return walked
        # Read after the walk, the head is at or past every entry walked; entries written
        # meanwhile are walked up to it.
        head = await self.store.audit_head()
        walked = await self._walk(walked, batch, until=head[0])
        return verify_head(walked, head) if walked.intact else walked

    async def _walk(self, walked: VerifyResult, batch: int,
                    until: int | None = None) -> VerifyResult:
        """``walked`` checked on to the end of the log, or to entry ``until``."""
        while walked.intact:
            limit = batch if until is None else min(batch, until - walked.entries)
            if limit <= 0:
                break
            rows = await self.store.audit_rows(walked.entries, limit)
            walked = verify(rows, walked)
            if len(rows) < limit:
                break
        return walked

    async def for_subject(self, subject: str, limit: int = 100) -> list[AuditRow]:
        """The stored entries that touched the personal data of resident ``subject``
        (an entity id), newest first."""
        return await self.store.audit_for_subject(subject, limit)
