"""`smartcity accounts`: local users, clients and API keys, from the command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
import typer

from smartcity.cli_settings import CONFIG_OPTION, DB_HELP, settings_or_exit
from smartcity.config import Settings
from smartcity.core.clock import SystemClock, timestamp
from smartcity.core.ngsild.errors import NgsiLdError
from smartcity.core.validation import validated
from smartcity.security.accounts import Accounts, AccountSpec, Kind
from smartcity.security.policy import Policy, read_policy
from smartcity.store.backend import open_store

accounts_app = typer.Typer(help="Local accounts: users, clients and API keys.",
                           no_args_is_help=True)
KIND_HELP = "user, client or apikey"
T = TypeVar("T")


def _kind(value: str) -> Kind:
    if value not in ("user", "client", "apikey"):
        raise typer.BadParameter(f"{value!r} is not one of {KIND_HELP}")
    return value  # type: ignore[return-value]


def _run(settings: Settings, job: Callable[[Accounts], Awaitable[T]]) -> T:
    """Run ``job`` on the accounts of the configured database; a refused change is a
    message and exit code 2."""
    async def main() -> T:
        try:
            policy = Policy(read_policy(settings.policy))
        except ValueError as exc:
            raise NgsiLdError(str(exc)) from None
        store = await open_store(settings.db)
        try:
            accounts = Accounts(store, policy.roles)
            await accounts.reload()
            return await job(accounts)
        finally:
            await store.close()
    try:
        return asyncio.run(main())
    except NgsiLdError as exc:
        typer.echo(str(exc.detail), err=True)
        raise typer.Exit(2) from None


@accounts_app.command("add")
def add(
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    name: Annotated[str, typer.Argument(help="user name, client id, or the owner of an "
                                        "API key")],
    role: Annotated[list[str], typer.Option("--role", help="a role of the policy; repeat "
                                            "for several")],
    tenant: Annotated[list[str] | None, typer.Option(
        "--tenant", help="a tenant the account may reach; all its roles allow if none")
    ] = None,
    person: Annotated[str | None, typer.Option(help="entity id of the resident the account "
                                               "belongs to")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read a user's password from "
                                                 "standard input")] = False,
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    config: CONFIG_OPTION = None,
) -> None:
    """Make an account; a client's secret or an API key is printed this once."""
    account_kind = _kind(kind)
    password = None
    if account_kind == "user":
        password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt(
            "Password", hide_input=True, confirmation_prompt=True)
    values: dict[str, Any] = {"name": name, "roles": role, "tenants": tenant or None,
                              "person": person, "password": password}
    try:
        spec = validated(AccountSpec, values, "account")
    except NgsiLdError as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(2) from None
    issued = _run(settings_or_exit(config, db=db), lambda accounts: accounts.add(
        account_kind, spec, timestamp(SystemClock().now())))
    typer.echo(f"made {account_kind} {issued.name}")
    if account_kind != "user":
        typer.echo(f"secret (shown only now): {issued.secret}")


@accounts_app.command("list")
def list_accounts(
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    config: CONFIG_OPTION = None,
) -> None:
    """Print the accounts of a kind as JSON lines (never their secrets)."""
    account_kind = _kind(kind)

    async def listed(accounts: Accounts) -> list[dict[str, Any]]:
        return accounts.list(account_kind)
    for record in _run(settings_or_exit(config, db=db), listed):
        typer.echo(orjson.dumps(record).decode())


@accounts_app.command("remove")
def remove(
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    name: Annotated[str, typer.Argument(help="user name, client id or API key id")],
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    config: CONFIG_OPTION = None,
) -> None:
    """Remove an account; its tokens stop working at once."""
    account_kind = _kind(kind)
    _run(settings_or_exit(config, db=db), lambda accounts: accounts.remove(account_kind,
                                                                            name))
    typer.echo(f"removed {account_kind} {name}")


