"""The `smartcity` command."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from smartcity import __version__
from smartcity.config import load_settings

app = typer.Typer(help="smartcity: an open platform for a smart and connected city.",
                  no_args_is_help=True, add_completion=False)


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
    db: Annotated[str | None, typer.Option(help="SQLite database file.")] = None,
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                                help="Settings file (TOML or JSON).")] = None,
) -> None:
    """Run the platform: the NGSI-LD API under /ngsi-ld/v1/."""
    import uvicorn

    from smartcity.app import create_app

    try:
        settings = load_settings(config, host=host, port=port, db=db)
    except (ValidationError, ValueError) as exc:
        typer.echo(f"Invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.mqtt_listener and not _can_listen(settings.mqtt_host, settings.mqtt_port):
        typer.echo(f"The embedded MQTT listener cannot listen on {settings.mqtt_host}:"
                   f"{settings.mqtt_port} (in use?): set mqtt_port, or mqtt_listener = false "
                   "when a real broker serves MQTT.", err=True)
        raise typer.Exit(2)
    typer.echo(f"smartcity {__version__} on http://{settings.host}:{settings.port}/ "
               f"(database {settings.db})")
    # Authentication and access control are not built yet: say so every time.
    typer.echo("WARNING: this version has no authentication; serve it on a trusted "
               "network only.", err=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False)


def _can_listen(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
