"""The environment the compose processes test gives each service: compose's interpolation and .env rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.compose import (
    ComposeProject,
    MissingVariable,
    Unsupported,
    build_context,
    filled_env_example,
    image_config,
    interpolate,
    read_dotenv,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"
VARIABLES = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${SET}", "value"),
        ("$SET/x", "value/x"),
        ("${EMPTY}", ""),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${SET:-d}", "value"),
        ("${SET:?m}", "value"),
        ("${EMPTY?m}", ""),
        ("${SET:+r}", "r"),
        ("${EMPTY:+r}", ""),
        ("${EMPTY+r}", "r"),
        ("${UNSET+r}", ""),
        ("$${SET} and $$(hostname)", "${SET} and $(hostname)"),
        ("http://${SET:-x}:8081/codec", "http://value:8081/codec"),
    ],
)
def test_interpolation_follows_compose(text, expected):
    assert interpolate(text, VARIABLES) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${UNSET}", "not set, and compose would use an empty string"),  # compose only warns
        ("$UNSET", "not set, and compose would use an empty string"),
        ("${UNSET:?set UNSET in .env}", "set UNSET in .env"),
        ("${EMPTY:?set EMPTY in .env}", "set EMPTY in .env"),
        ("${UNSET?m}", "m"),
    ],
)
def test_a_variable_without_a_value_is_an_error_naming_it(text, message):
    with pytest.raises(MissingVariable) as missing:
        interpolate(text, VARIABLES)

    assert missing.value.name in {"UNSET", "EMPTY"}
    assert str(missing.value) == f"required variable {missing.value.name} is missing a value: {message}"


@pytest.mark.parametrize("text", ["${A:-${B}}", "cost: 5$", "${1ABC}"])
def test_what_the_test_does_not_reproduce_is_refused(text):
    with pytest.raises(Unsupported):
        interpolate(text, VARIABLES)


def test_dotenv_lines_are_name_equals_value(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\n\nA=1\nB=\n  C = spaced \n#D=commented\n")

    assert read_dotenv(dotenv) == {"A": "1", "B": "", "C": "spaced"}


@pytest.mark.parametrize("line", ['A="quoted"', "A=$B", "A=1 # note", "export A=1", "A", "A=1\nA=2"])
def test_dotenv_syntax_the_test_does_not_reproduce_is_refused(tmp_path, line):
    dotenv = tmp_path / ".env"
    dotenv.write_text(line + "\n")

    with pytest.raises(Unsupported):
        read_dotenv(dotenv)


def _required_in_example() -> list[str]:
    return re.findall(r"^([A-Z_]+)=$", EXAMPLE.read_text(), re.MULTILINE)


def test_env_example_as_shipped_does_not_start_compose(tmp_path):
    # `cp .env.example .env` without filling it in: compose refuses, naming the first empty secret.
    dotenv = tmp_path / ".env"
    dotenv.write_text(EXAMPLE.read_text())

    with pytest.raises(MissingVariable, match=r"POSTGRES_PASSWORD is missing a value: set POSTGRES_PASSWORD in \.env"):
        ComposeProject(ROOT / "docker-compose.yml", dotenv)


@pytest.mark.parametrize("name", _required_in_example())
def test_a_required_variable_missing_from_env_example_fails_naming_it(tmp_path, name):
    filled = filled_env_example(EXAMPLE.read_text())
    dotenv = tmp_path / ".env"
    dotenv.write_text("".join(line for line in filled.splitlines(True) if not line.startswith(f"{name}=")))

    with pytest.raises(MissingVariable) as missing:
        ComposeProject(ROOT / "docker-compose.yml", dotenv)

    assert missing.value.name == name
    assert f"set {name} in .env" in str(missing.value)


def test_every_variable_the_compose_file_reads_is_documented_in_env_example():
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^#?([A-Z_][A-Z0-9_]*)=", EXAMPLE.read_text(), re.MULTILINE))

    assert used - documented == set()


def test_the_image_environment_comes_from_the_dockerfiles_last_stage():
    env, workdir = image_config(ROOT / "Dockerfile")

    assert workdir == "/app"
    assert env["PATH"].startswith("/opt/venv/bin:/usr/local/sbin:")
    assert env["PYTHONUNBUFFERED"] == "1"


def test_the_working_directory_is_the_build_context_without_env_or_tests(tmp_path):
    context = build_context(ROOT, tmp_path / "app")
    names = {entry.name for entry in context.iterdir()}

    assert {"worker.py", "settings.py", "api", "domain", ".env.example"} <= names
    assert not names & {".env", ".venv", ".git", "tests", "deploy", "docker-compose.yml", ".data"}
