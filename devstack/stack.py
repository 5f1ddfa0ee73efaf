"""`make run`: the Temporal dev server, the worker, the API and the codec server, stopped together by Ctrl-C.

python -m devstack.stack [--data-dir .data] [--temporal-port 7233] [--ui-port 8233] [--api-port 8000]
                         [--codec-port 8081] [--worker-metrics-port 9464]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from devstack.devserver import start_dev_server, temporal_binary, wait_until_serving
from devstack.lifetime import die_with_parent
from devstack.ports import taken_ports_report
from infra.codec import new_key
from settings import get_settings

_STOP_TIMEOUT = 20.0
# Ctrl-C, a `kill`, the terminal closing: each stops the stack in order; a second one kills it.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The dev server keeps closed workflows, the delivery log, for a day; merchants need longer.
LOG_RETENTION = "720h"


def _parse_args() -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"), help="where Temporal keeps its state")
    parser.add_argument("--temporal-port", type=int, default=int(settings.temporal_address.rsplit(":", 1)[-1]))
    parser.add_argument("--ui-port", type=int, default=8233)
    parser.add_argument("--api-port", type=int, default=settings.api_port)
    parser.add_argument("--codec-port", type=int, default=settings.codec_port, help="the operators' codec server")
    parser.add_argument("--worker-metrics-port", type=int, default=settings.worker_metrics_port or 9464)
    return parser.parse_args()


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Own session: Ctrl-C reaches only us, and we stop the children in order; if we are
    # killed outright, the kernel kills them.
    return subprocess.Popen([sys.executable, *args], env=env, start_new_session=True, preexec_fn=die_with_parent())


def _stop(name: str, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop within {_STOP_TIMEOUT:g}s; killing pid {process.pid}", flush=True)
        process.kill()
        process.wait()


def _kill_now(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """No more waiting for a child finishing its work: SIGKILL whatever still runs, by PID."""
    # Not print(): this may interrupt a print of the stop, and buffered streams refuse re-entry.
    os.write(sys.stdout.fileno(), b"killing what still runs\n")
    for _, process in children:
        process.kill()


def _key(configured: SecretStr | None, key_file: Path) -> str:
    """The configured key if set, else the key kept beside the data it encrypts (made on first run)."""
    if configured is not None:
        return configured.get_secret_value()
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(new_key())
    return key_file.read_text().strip()


def codec_url(codec_port: int) -> str:
    """Where the Web UI, in the operator's browser, reaches the codec server."""
    return f"http://localhost:{codec_port}/codec"


def _codec_access() -> str:
    if get_settings().operator_token is None:
        return "open to this machine only"
    return "WEBHOOKS_OPERATOR_TOKEN required: the Web UI cannot send it, use the CLI's --codec-auth"


def _set_retention(address: str, namespace: str) -> None:
    command = [temporal_binary(), "operator", "namespace", "update", "--address", address]
    subprocess.run(
        [*command, "--retention", LOG_RETENTION, "-n", namespace],
        check=True,
        stdout=subprocess.DEVNULL,
        preexec_fn=die_with_parent(),
    )


def _ports(args: argparse.Namespace) -> dict[str, int]:
    """Every port the stack listens on, by what listens there."""
    ports = {
        "Temporal": args.temporal_port,
        "Temporal Web UI": args.ui_port,
        "API": args.api_port,
        "codec server": args.codec_port,
        "worker metrics": args.worker_metrics_port,
    }
    health_port = get_settings().worker_health_port
    return ports | ({"worker health": health_port} if health_port else {})


async def _run(args: argparse.Namespace) -> int:
    address = f"127.0.0.1:{args.temporal_port}"
    ui_url = f"http://localhost:{args.ui_port}"
    settings = get_settings()
    # Before anything starts: a child failing on a taken port would only say `exited with code 1`.
    taken = taken_ports_report(_ports(args))
    if taken is not None:
        print(taken, file=sys.stderr, flush=True)
        return 1
    args.data_dir.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "WEBHOOKS_TEMPORAL_ADDRESS": address,
        "WEBHOOKS_API_PORT": str(args.api_port),
        "WEBHOOKS_TEMPORAL_UI_URL": ui_url,
        "WEBHOOKS_ENCRYPTION_KEY": _key(settings.encryption_key, args.data_dir / "encryption.key"),
        "WEBHOOKS_SECRETS_KEY": _key(settings.secrets_key, args.data_dir / "secrets.key"),
        "WEBHOOKS_WORKER_METRICS_PORT": str(args.worker_metrics_port),
        # Local use: endpoints on this machine (a receiver on localhost) are allowed.
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": os.environ.get("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true"),
    }
    server_log = (args.data_dir / "temporal.log").open("ab")
    server = start_dev_server(
        args.temporal_port,
        ui_port=args.ui_port,
        db_file=args.data_dir / "temporal.db",
        log=server_log,
        # The Web UI decodes through the operators' codec server, on loopback only.
        codec_endpoint=codec_url(args.codec_port),
    )
    children: list[tuple[str, subprocess.Popen[bytes]]] = [("temporal", server)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        await wait_until_serving(address, server)
        _set_retention(address, settings.temporal_namespace)
        children.append(("worker", _spawn(["worker.py"], env)))
        api_args = ["-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1"]
        children.append(("api", _spawn([*api_args, "--port", str(args.api_port)], env)))
        codec_args = ["-m", "uvicorn", "--factory", "api.codec_server:create_codec_app", "--host", "127.0.0.1"]
        # The codec server decodes payloads for operators; the credentials inside stay sealed for it.
        codec_env = {name: value for name, value in env.items() if not name.startswith("WEBHOOKS_SECRETS_")}
        children.append(("codec", _spawn([*codec_args, "--port", str(args.codec_port)], codec_env)))
        print(
            f"\nWebhook service running (Ctrl-C stops it)\n"
            f"  API       http://localhost:{args.api_port}  (docs: /docs, OpenAPI: /openapi.json)\n"
            f"  Web UI    {ui_url}  (decodes through {codec_url(args.codec_port)}, {_codec_access()})\n"
            f"  Metrics   http://localhost:{args.api_port}/metrics (API), "
            f"http://localhost:{args.worker_metrics_port}/metrics (worker)\n"
            f"  Temporal  {address}, state in {args.data_dir / 'temporal.db'}\n",
            flush=True,
        )
        while not stop.is_set():
            exited = [(name, p.returncode) for name, p in children if p.poll() is not None]
            if exited:
                print(f"{exited[0][0]} exited with code {exited[0][1]}; stopping the rest", flush=True)
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
        return 0
    finally:
        # The stop below blocks the loop: a second signal must act by itself, not through it.
        for sig in _STOP_SIGNALS:
            signal.signal(sig, lambda *_: _kill_now(children))
        print("stopping: codec, api, worker, temporal (Ctrl-C again kills them at once)", flush=True)
        for name, process in reversed(children):
            _stop(name, process)
        server_log.close()


def main() -> None:
    code = asyncio.run(_run(_parse_args()))
    # The SDK's runtime can crash at interpreter exit (sdk-python#300); leave cleanly.
    os._exit(code)


if __name__ == "__main__":
    main()
