"""Specification of the `smartcity` command line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartcity import __version__
from smartcity.cli import app

runner = CliRunner()


def test_version_prints_the_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"smartcity {__version__}"


def test_help_lists_the_serve_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output


def test_serve_with_a_missing_config_file_exits_with_a_message(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = runner.invoke(app, ["serve", "--config", str(missing)])
    assert result.exit_code != 0
    assert "missing.toml" in result.output
    assert "does not exist" in result.output.lower()


@pytest.mark.parametrize(("name", "content"), [
    ("broken.toml", "port = [unclosed"),
    ("broken.json", "{port: 1}"),
    ("unknown.toml", 'colour = "red"'),
    ("negative.toml", "port = -1"),
    ("retention.toml", '[[retention]]\ntype = "Meter"\nraw = "30 days"'),
    ("period.toml", '[[retention]]\nraw = "P30D"\naggregate = "PT1X"'),
    ("months.toml", '[[retention]]\nraw = "P30D"\naggregate = "P1M"'),
])
def test_serve_with_an_invalid_config_file_exits_with_a_message(
        tmp_path: Path, name: str, content: str) -> None:
    config = tmp_path / name
    config.write_text(content)
    result = runner.invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code != 0
    assert "Invalid settings" in result.output
    assert "Traceback" not in result.output


def test_serve_with_an_invalid_port_exits_with_a_message() -> None:
    result = runner.invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code != 0
    assert "port" in result.output.lower()


def test_serve_says_so_when_the_mqtt_listener_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--db", str(tmp_path / "city.db")],
                               env={"SMARTCITY_MQTT_LISTENER": "true",
                                    "SMARTCITY_MQTT_PORT": str(port)})
    assert result.exit_code == 2
    assert "MQTT listener cannot listen" in result.output
