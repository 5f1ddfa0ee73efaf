"""docker-compose.yml as plain local processes: what compose would run, and with what environment.

The rules implemented, a subset of the Compose Specification. Anything outside
the subset raises `Unsupported`, so the processes test can never silently
differ from what compose would do; extend the subset when the file needs it.

Interpolation ("Interpolation" in the spec), applied to every string value of
the file (keys are not interpolated), from the project's `.env` alone, as if
the shell running `docker compose` set no variable of its own:
    $$            a literal $
    ${VAR}, $VAR  the value; unset: compose warns and uses "", here it is an error
    ${VAR:-d}     d when VAR is unset or empty        ${VAR-d}   d when unset
    ${VAR:?msg}   an error when VAR is unset or empty  ${VAR?msg} an error when unset
    ${VAR:+r}     r when VAR is set and non-empty, else ""   ${VAR+r}  r when set
A nested ${...} in d, r or msg, and a `$` starting none of these, are refused.
Every error names the variable (`MissingVariable`).

`.env` and `env_file:` files (compose's dotenv, a subset): blank lines and lines
starting with `#` are skipped; every other line is NAME=VALUE, NAME a shell
identifier, VALUE everything after the first `=`, both whitespace-trimmed. A
quoted VALUE, a `$`, `export`, a ` #` comment and a NAME twice are refused.

A service's environment, as in its container: the image's ENV (the last stage
of the Dockerfile, for the services built from it; other images' are not
known: they get PATH alone, with the tools from the venv), then its `env_file:`
entries in order, then its `environment:` (map or NAME=VALUE list), each
overriding the one before; plus HOME (the working directory).

Paths: the image's /opt/venv is this project's venv, its WORKDIR the build
context as `COPY . /app` has it (`build_context`), a bind mount's target its
source file in the project.

Ports: containers each have their own network, these processes share one. So
every port a run service listens on (the container side of `ports:`, a numeric
`*_PORT` of its `environment:`, the value after `--port` in its command) gets a
free port of 127.0.0.1, everywhere it appears: that argument, that variable, a
`127.0.0.1:port`/`localhost:port` of its own (its healthcheck), and
`service:port` in the others' settings, the host becoming 127.0.0.1. A service
replaced by a stand-in (the Temporal dev server) has its published ports mapped
to the stand-in's. An argument `0.0.0.0` (the container's interfaces) becomes
127.0.0.1.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import re
import secrets
import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

# The python:3.11-slim base image's PATH, which the Dockerfile's `PATH=…:$PATH` extends.
BASE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What this module knows a run service may say; any other key is refused.
KNOWN_KEYS = {
    "image", "build", "init", "restart", "env_file", "environment", "depends_on", "command",
    "entrypoint", "ports", "volumes", "healthcheck", "stop_grace_period",
}  # fmt: skip
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DOLLAR = re.compile(rf"\$(?:(?P<escaped>\$)|\{{(?P<braced>[^}}]*)\}}|(?P<named>{_NAME}))")
_BRACED = re.compile(rf"^(?P<name>{_NAME})(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.DOTALL)
_HOST_PORT = re.compile(r"(?<![\w.-])(?P<host>[A-Za-z0-9][\w.-]*):(?P<port>\d+)\b")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


class Unsupported(ValueError):
    """The compose file uses something this module does not reproduce."""


class MissingVariable(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return _value(match["named"], None, "", variables)
        braced = _BRACED.match(match["braced"])
        if braced is None or "$" in (braced["arg"] or ""):
            raise Unsupported(f"interpolation ${{{match['braced']}}}")
        return _value(braced["name"], braced["op"], braced["arg"] or "", variables)

    rest = _DOLLAR.sub(lambda m: substitute(m).replace("$", "\0"), text)
    if "$" in rest:
        raise Unsupported(f"a `$` that starts no interpolation in {text!r}")
    return rest.replace("\0", "$")


def _value(name: str, op: str | None, arg: str, variables: Mapping[str, str]) -> str:
    value = variables.get(name)
    missing = value is None or (op is not None and op.startswith(":") and value == "")
    if op in (":-", "-"):
        return arg if missing else str(value)
    if op in (":+", "+"):
        return "" if missing else arg
    if missing:  # ${VAR}, ${VAR:?msg} and ${VAR?msg}
        raise MissingVariable(name, arg or "not set, and compose would use an empty string")
    return str(value)


def read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, equals, value = (part.strip() for part in stripped.partition("="))
        where = f"{path.name}:{number}"
        if not equals or not re.fullmatch(_NAME, name):
            raise Unsupported(f"{where}: not NAME=VALUE")
        if value.startswith(("'", '"')) or "$" in value or " #" in value:
            raise Unsupported(f"{where}: {name}'s value is quoted, or has a `$` or a comment")
        if name in values:
            raise Unsupported(f"{where}: {name} is set twice")
        values[name] = value
    return values


def _interpolate_values(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: _interpolate_values(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate_values(item, variables) for item in node]
    return node


def seconds(duration: str) -> float:
    """A compose duration (`15s`, `1m30s`, `500ms`) in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise Unsupported(f"duration {duration!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * scale[unit] for number, unit in parts)


def container_port(published: str) -> int:
    """The container side of a short-syntax `ports:` entry (`127.0.0.1:8233:8080` → 8080)."""
    return int(str(published).rsplit(":", 1)[-1].split("/")[0])


@dataclass(frozen=True)
class Healthcheck:
    argv: list[str]
    interval: float
    timeout: float
    retries: int
    start_period: float

    @property
    def budget(self) -> float:
        """How long compose lets a service try before it calls it unhealthy."""
        return self.start_period + self.interval * self.retries


@dataclass(frozen=True)
class LocalService:
    """One compose service as a local process: what to run, where, with what environment."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    healthcheck: Healthcheck | None
    stop_grace_period: float
    depends_on: dict[str, str]  # service -> condition


class PortMap:
    """Each (service, container port) gets a local port: here every process shares one network."""

    def __init__(self, ports: dict[tuple[str, int], int]) -> None:
        self.ports = ports

    def local(self, service: str, port: int) -> int:
        try:
            return self.ports[service, port]
        except KeyError:
            raise Unsupported(f"no local stand-in for {service}:{port}") from None

    def rewrite(self, text: str, service: str, services: Mapping[str, Any]) -> str:
        """`other-service:port` → `127.0.0.1:local`; this service's `127.0.0.1|localhost:port` → `…:local`."""

        def replace(match: re.Match[str]) -> str:
            host, port = match["host"], int(match["port"])
            if host in services:
                return f"127.0.0.1:{self.local(host, port)}"
            if host in ("127.0.0.1", "localhost") and (service, port) in self.ports:
                return f"{host}:{self.ports[service, port]}"
            return match[0]

        return _HOST_PORT.sub(replace, text)


class ComposeProject:
    def __init__(self, compose_file: Path, dotenv: Path) -> None:
        """The compose file interpolated from `dotenv`, which stands for the project's `.env`."""
        self.root = compose_file.parent
        self.dotenv = dotenv
        document = YAML(typ="safe").load(compose_file.read_text(encoding="utf-8"))  # resolves <<: merges
        self.services: dict[str, dict[str, Any]] = _interpolate_values(document, read_dotenv(dotenv))["services"]

    def container_ports(self, name: str) -> set[int]:
        """Where a service listens: its published ports, its `*_PORT` settings, its `--port` argument."""
        service = self.services[name]
        ports = {container_port(p) for p in service.get("ports", [])}
        ports |= {int(v) for k, v in _environment(service).items() if k.endswith("_PORT") and str(v).isdigit()}
        command = [str(arg) for arg in service.get("command", [])]
        ports |= {int(command[i + 1]) for i, arg in enumerate(command[:-1]) if arg == "--port"}
        return ports

    def port_map(self, run: set[str], fixed: Mapping[str, int], pick: Callable[[], int]) -> PortMap:
        """A free local port for each port of each service in `run`; the published ports of a `fixed`
        service (one replaced by a local stand-in) map to the stand-in's."""
        ports = {(name, port): pick() for name in run for port in self.container_ports(name)}
        for name, local in fixed.items():
            ports |= {(name, container_port(p)): local for p in self.services[name].get("ports", [])}
        return PortMap(ports)

    def local(self, name: str, ports: PortMap, workdir: Path, venv: Path) -> LocalService:
        """Service `name` as a local process; container paths map to local stand-ins: the image's
        /opt/venv to `venv`, its WORKDIR to `workdir`, bind mounts to their files in the project."""
        service = self.services[name]
        unknown = set(service) - KNOWN_KEYS
        if unknown:
            raise Unsupported(f"{name}: {sorted(unknown)}")
        paths = {"/opt/venv": str(venv)} | self._bind_mounts(service)
        # Other images' tools (temporal-setup's `temporal` CLI) stand in from the venv too.
        env = {"PATH": f"/opt/venv/bin:{BASE_IMAGE_PATH}", "HOME": str(workdir)}
        if "build" in service:
            image_env, image_workdir = image_config(self.root / "Dockerfile")
            paths[image_workdir] = str(workdir)
            env |= image_env
        for entry in _listed(service.get("env_file", [])):
            env |= read_dotenv(self.dotenv if entry == ".env" else self.root / entry)
        env |= _environment(service)

        def local_text(text: str) -> str:
            for inside, outside in paths.items():
                text = re.sub(rf"(?<![\w/]){re.escape(inside)}(?=/|$|:)", outside, text)
            return ports.rewrite(text, name, self.services)

        argv = [str(arg) for arg in [*_listed(service.get("entrypoint", [])), *_listed(service.get("command", []))]]
        for i, arg in enumerate(argv[:-1]):
            if arg == "--port":
                argv[i + 1] = str(ports.local(name, int(argv[i + 1])))
        # The container's own interfaces: here, the loopback (nothing listens beyond the machine).
        argv = ["127.0.0.1" if arg == "0.0.0.0" else local_text(arg) for arg in argv]
        local_env = {key: local_text(value) for key, value in env.items()}
        for key, value in env.items():
            if key.endswith("_PORT") and value.isdigit():
                local_env[key] = str(ports.local(name, int(value)))
        check = service.get("healthcheck")
        health = None
        if check and not check.get("disable"):
            test = [str(part) for part in _listed(check["test"])]
            command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", *test[1:]] if test[0] == "CMD-SHELL" else []
            if not command:
                raise Unsupported(f"{name}: healthcheck test {test[0]}")
            health = Healthcheck(
                [local_text(part) for part in command],
                seconds(check.get("interval", "30s")),
                seconds(check.get("timeout", "30s")),
                int(check.get("retries", 3)),
                seconds(check.get("start_period", "0s")),
            )
        if not argv:
            raise Unsupported(f"{name}: no command or entrypoint (the image's CMD is not read)")
        argv[0] = shutil.which(argv[0], path=local_env["PATH"]) or argv[0]
        return LocalService(
            name,
            argv,
            local_env,
            workdir,
            health,
            seconds(service.get("stop_grace_period", "10s")),
            _conditions(service.get("depends_on", {})),
        )

    def _bind_mounts(self, service: dict[str, Any]) -> dict[str, str]:
        mounts = {}
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith(("./", "/")):
                mounts[target] = str((self.root / source).resolve())
        return mounts


def _listed(value: str | list[Any]) -> list[Any]:
    if isinstance(value, str):
        return shlex.split(value)
    return list(value)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(str(item).split("=", 1) for item in environment)
    if any(value is None for value in environment.values()):
        raise Unsupported("an environment entry without a value (taken from the shell)")
    return {str(key): str(value) for key, value in environment.items()}


def _conditions(depends_on: list[str] | dict[str, dict[str, str]]) -> dict[str, str]:
    if isinstance(depends_on, list):
        return dict.fromkeys(depends_on, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends_on.items()}


def image_config(dockerfile: Path) -> tuple[dict[str, str], str]:
    """The last stage's ENV (PATH extending the base image's) and WORKDIR; an ENTRYPOINT is refused."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    env: dict[str, str] = {}
    workdir = "/"
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        instruction, rest = words[0].upper(), words[1] if len(words) > 1 else ""
        if instruction == "FROM":
            env, workdir = {}, "/"
        elif instruction == "WORKDIR":
            workdir = rest.strip()
        elif instruction == "ENTRYPOINT":
            raise Unsupported("an ENTRYPOINT in the Dockerfile")
        elif instruction == "ENV":
            for pair in shlex.split(rest):
                name, equals, value = pair.partition("=")
                if not equals:
                    raise Unsupported(f"ENV {rest} (only NAME=VALUE)")
                env[name] = value.replace("$PATH", env.get("PATH", BASE_IMAGE_PATH))
    return env, workdir


def build_context(root: Path, into: Path) -> Path:
    """The image's copy of the project (`COPY . /app`): the top-level entries .dockerignore keeps,
    files copied, directories linked. Without `.env`: settings.py reads one from its working directory."""
    patterns = [
        line.strip()
        for line in (root / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(name: str) -> bool:
        verdict = False
        for pattern in patterns:
            keep = pattern.startswith("!")
            glob = pattern.removeprefix("!").removeprefix("**/").rstrip("/")
            if "/" not in glob and fnmatch.fnmatchcase(name, glob):
                verdict = not keep
        return verdict

    into.mkdir(parents=True)
    for entry in sorted(root.iterdir()):
        if ignored(entry.name):
            continue
        if entry.is_dir():
            (into / entry.name).symlink_to(entry, target_is_directory=True)
        else:
            shutil.copy2(entry, into / entry.name)
    return into


def filled_env_example(example: str, **settings: str) -> str:
    """`.env.example` as a user fills it in: every required value left empty (`NAME=`) gets a fresh
    one, made as its comment says (keys: base64url of 32 random bytes; tokens and passwords:
    token_urlsafe), and `settings` are added, as uncommenting their lines would."""
    lines = []
    for line in example.splitlines():
        name, equals, value = line.partition("=")
        if equals and not line.startswith("#") and not value:
            fresh = base64.urlsafe_b64encode(os.urandom(32)).decode() if name.endswith("_KEY") else None
            line = f"{name}={fresh or secrets.token_urlsafe(32)}"
        lines.append(line)
    return "\n".join([*lines, *(f"{name}={value}" for name, value in settings.items())]) + "\n"
