"""The `smartcity` command."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Annotated

import typer

from smartcity import __version__
from smartcity.cli_accounts import accounts_app
from smartcity.cli_audit import audit_app
from smartcity.cli_settings import (
    CONFIG_OPTION,
    DB_HELP,
    schema_version_or_exit,
    settings_or_exit,
)
from smartcity.store.backend import describe, upgrade
from smartcity.store.postgres import is_postgres_url

app = typer.Typer(help="smartcity: an open platform for a smart and connected city.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The database: schema version and upgrades.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(audit_app, name="audit")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smartcity {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False
         ) -> None:
    """smartcity: NGSI-LD context broker and city platform."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes; more than one needs a PostgreSQL database.")] = None,
    config: CONFIG_OPTION = None,
    auth: Annotated[str | None, typer.Option(
        help="'on' (the default): authentication and access control; 'none' turns them "
             "off, for local conformance runs only.")] = None,
) -> None:
    """Run the platform: the NGSI-LD API under /ngsi-ld/v1/."""
    import uvicorn

    from smartcity.app import WORKER_SETTINGS, create_app

    settings = settings_or_exit(config, host=host, port=port, db=db, workers=workers, auth=auth)
    if settings.workers > 1 and not is_postgres_url(settings.db):
        typer.echo("Several workers need a PostgreSQL database (--db postgresql://...): "
                   "SQLite is written by one process.", err=True)
        raise typer.Exit(2)
    _require_current_schema(settings.db)
    if settings.workers > 1 and settings.mqtt_listener:
        # One port cannot take N listeners; with workers, devices talk to a real broker.
        settings = settings.model_copy(update={"mqtt_listener": False})
        typer.echo("The embedded MQTT listener is off with several workers: connect "
                   "devices to an MQTT broker such as Mosquitto.", err=True)
    if settings.workers > 1 and settings.event_bus == "local":
        typer.echo("With several workers and the local event bus, the platform's own "
                   "services see only the changes of their worker: set event_bus to NATS "
                   "JetStream (nats://...).", err=True)
    if settings.mqtt_listener and not _can_listen(settings.mqtt_host, settings.mqtt_port):
        typer.echo(f"The embedded MQTT listener cannot listen on {settings.mqtt_host}:"
                   f"{settings.mqtt_port} (in use?): set mqtt_port, or mqtt_listener = false "
                   "when a real broker serves MQTT.", err=True)
        raise typer.Exit(2)
    typer.echo(f"smartcity {__version__} on http://{settings.host}:{settings.port}/ "
               f"(database {describe(settings.db)})")
    if settings.auth == "none":
        _warn_no_auth(settings.host)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                    log_level=settings.log_level, access_log=False)
        return
    os.environ[WORKER_SETTINGS] = settings.model_dump_json()
    uvicorn.run("smartcity.app:worker_app", factory=True, workers=settings.workers,
                host=settings.host, port=settings.port, log_level=settings.log_level,
                access_log=False)


def _warn_no_auth(host: str) -> None:
    """Access control is off: say so where nobody can miss it, on every start."""
    line = "!" * 78
    typer.secho(f"{line}\n!! AUTHENTICATION IS OFF (--auth none): anyone who reaches "
                f"{host} can read,\n!! change and delete every entity. For local "
                f"conformance runs only.\n{line}", err=True, fg=typer.colors.RED, bold=True)


def _require_current_schema(db: str) -> None:
    """Serving refuses a database at another schema version (an empty one is set up):
    upgrades are an operator's deliberate step, taken once for all workers."""
    held, needed = schema_version_or_exit(db)
    if held not in (0, needed):
        advice = "run 'smartcity db upgrade' first" if held < needed else \
            "it was written by a newer smartcity"
        typer.echo(f"The database {describe(db)} holds schema version {held}, this "
                   f"smartcity needs {needed}: {advice}.", err=True)
        raise typer.Exit(2)


@db_app.command("status")
def db_status(
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    config: CONFIG_OPTION = None,
) -> None:
    """Print the schema version the database holds and the one this smartcity needs."""
    settings = settings_or_exit(config, db=db)
    held, needed = schema_version_or_exit(settings.db)
    typer.echo(f"{describe(settings.db)}: schema version {held}, this smartcity needs "
               f"{needed}" + ("" if held == needed else " (run 'smartcity db upgrade')"))


@db_app.command("upgrade")
def db_upgrade(
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    config: CONFIG_OPTION = None,
) -> None:
    """Apply the schema migrations the database lacks; every stored row is kept."""
    settings = settings_or_exit(config, db=db)
    schema_version_or_exit(settings.db)  # a clear message when the database cannot be reached
    for applied in asyncio.run(upgrade(settings.db)):
        typer.echo(f"applied migration {applied}")
    held, _ = schema_version_or_exit(settings.db)
    typer.echo(f"{describe(settings.db)} is at schema version {held}")


def _can_listen(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
