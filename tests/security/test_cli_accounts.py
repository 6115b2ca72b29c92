"""`smartcity accounts`: local accounts made, listed and removed from the command line."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from smartcity.cli import app


def test_accounts_are_made_listed_and_removed(db: str) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["accounts", "add", "client", "ops", "--role", "lighting",
                               "--tenant", "north", "--db", db])
    assert made.exit_code == 0, made.output
    assert "secret (shown only now):" in made.output
    user = runner.invoke(app, ["accounts", "add", "user", "anna", "--role", "resident",
                               "--person", "urn:ngsi-ld:Person:anna", "--password-stdin",
                               "--db", db], input="a password long enough\n")
    assert user.exit_code == 0, user.output
    listed = runner.invoke(app, ["accounts", "list", "client", "--db", db])
    [ops] = [orjson.loads(line) for line in listed.output.splitlines()]
    assert ops["name"] == "ops" and ops["tenants"] == ["north"] and "secret" not in ops
    assert runner.invoke(app, ["accounts", "remove", "client", "ops", "--db", db]
                         ).exit_code == 0
    assert runner.invoke(app, ["accounts", "list", "client", "--db", db]).output == ""


def test_a_bad_account_is_a_message_and_exit_code_2(db: str) -> None:
    runner = CliRunner()
    for args, problem in ((["add", "client", "x", "--role", "wizard"], "No such role"),
                          (["add", "robot", "x", "--role", "admin"], "not one of"),
                          (["remove", "user", "nobody"], "No user named nobody")):
        result = runner.invoke(app, ["accounts", *args, "--db", db])
        assert result.exit_code == 2 and problem in result.output, result.output
    short = runner.invoke(app, ["accounts", "add", "user", "bo", "--role", "resident",
                                "--password-stdin", "--db", db], input="short\n")
    assert short.exit_code == 2 and "12 characters" in short.output
