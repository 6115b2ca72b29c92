"""`smartcity audit`: check the audit log's hash chain, and list its entries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import orjson
import typer

from smartcity.cli_settings import (
    CONFIG_OPTION,
    DB_HELP,
    schema_version_or_exit,
    settings_or_exit,
)
from smartcity.core.clock import SystemClock, timestamp
from smartcity.security.audit import AuditLog, AuditRow, VerifyResult
from smartcity.store.backend import describe, open_store

audit_app = typer.Typer(help="The audit log: check that it is intact, list its entries.",
                        no_args_is_help=True)
Database = Annotated[str | None, typer.Option(help=DB_HELP)]


@audit_app.command("verify")
def audit_verify(db: Database = None, config: CONFIG_OPTION = None) -> None:
    """Check every entry against the hash chain and the head; exit 1 when broken."""
    result = asyncio.run(_verify(_database(config, db)))
    if not result.intact:
        typer.echo(f"audit log BROKEN at entry {result.broken_at}: {result.reason}")
        raise typer.Exit(1)
    typer.echo(f"audit log intact: {result.entries} entries, head {result.head[:16]}")


@audit_app.command("list")
def audit_list(
    subject: Annotated[str | None, typer.Option(
        help="Only the entries that touched this resident's data (an entity id).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many entries at most.")] = 100,
    db: Database = None,
    config: CONFIG_OPTION = None,
) -> None:
    """Print the newest entries, one JSON object a line, with their seq and hash."""
    for row in asyncio.run(_newest(_database(config, db), subject, limit)):
        typer.echo(orjson.dumps({"seq": row.seq, "hash": row.hash,
                                 **orjson.loads(row.document)}).decode())


def _database(config: Path | None, db: str | None) -> str:
    """The ``db`` setting, refused unless it holds this smartcity's schema: a mistyped
    path must not read as an empty, intact log."""
    settings = settings_or_exit(config, db=db)
    held, needed = schema_version_or_exit(settings.db)
    if held != needed:
        typer.echo(f"{describe(settings.db)} holds schema version {held}, not this "
                   f"smartcity's ({needed}): no audit log to read", err=True)
        raise typer.Exit(2)
    return settings.db


async def _verify(db: str) -> VerifyResult:
    store = await open_store(db)
    try:
        # Verifying records nothing: the clock is never read.
        return await AuditLog(store, lambda: timestamp(SystemClock().now())).verify()
    finally:
        await store.close()


async def _newest(db: str, subject: str | None, limit: int) -> list[AuditRow]:
    store = await open_store(db)
    try:
        if subject is not None:
            return await store.audit_for_subject(subject, limit)
        seq, _ = await store.audit_head()
        return list(reversed(await store.audit_rows(max(seq - limit, 0), limit)))
    finally:
        await store.close()
