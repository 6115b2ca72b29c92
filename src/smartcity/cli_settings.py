"""What every `smartcity` command reads its settings with."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer
from pydantic import ValidationError

from smartcity.config import Settings, load_settings
from smartcity.store.backend import describe, schema_version

DB_HELP = "SQLite database file, or a postgresql:// URL."
CONFIG_OPTION = Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                                    help="Settings file (TOML or JSON).")]


def settings_or_exit(config: Path | None, **values: Any) -> Settings:
    """The settings, or a message and exit code 2 when they are not valid."""
    try:
        return load_settings(config, **values)
    except (ValidationError, ValueError) as exc:
        typer.echo(f"Invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None


def schema_version_or_exit(db: str) -> tuple[int, int]:
    """The schema version the database holds and the one this smartcity needs; a
    message and exit code 2 when the database cannot be read."""
    try:
        return asyncio.run(schema_version(db))
    except (OSError, asyncpg.PostgresError, sqlite3.DatabaseError) as exc:
        typer.echo(f"The database {describe(db)} cannot be read: {exc}", err=True)
        raise typer.Exit(2) from None
