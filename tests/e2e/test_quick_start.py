"""The README's quick start, run as written: its marked shell blocks against `make run`'s stack and `make receiver`."""

from __future__ import annotations

import asyncio
import os
import re
import sys

from tests.conftest import free_port
from tests.e2e.test_stack import ROOT, running_stack, stack_ports
from tests.waiting import eventually

MARK = re.compile(r"<!-- quick-start[^>]*-->\n```sh\n(.*?)```", re.DOTALL)
# The receiver's line for each webhook: `[12:00:01] ORDER_SHIPPED  webhook-id=…  signature=verified  answered 200`.
RECEIVED = re.compile(r"^\[[\d:]+\] (?P<event>\S+)  webhook-id=(?P<id>\S+)  signature=(?P<check>\S+)", re.MULTILINE)


def quick_start_script() -> str:
    blocks = MARK.findall((ROOT / "README.md").read_text())
    assert len(blocks) >= 5, "the README's quick-start blocks are marked with <!-- quick-start --> before ```sh"
    return "\n".join(blocks)


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode())


async def test_the_readme_quick_start_delivers_every_event_signed_to_the_local_receiver(tmp_path):
    script = quick_start_script()
    receiver_port = free_port()
    printed: list[str] = []
    # Both in one directory, as the README asks: the receiver reads the secret the script saves there.
    receiver = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.receiver", "--port", str(receiver_port),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert receiver.stdout is not None
    reading = asyncio.create_task(_collect(receiver.stdout, printed))

    async def webhooks() -> list[tuple[str, str, str]]:
        return [(m["event"], m["id"], m["check"]) for m in RECEIVED.finditer("".join(printed))]

    async def started() -> bool:
        assert receiver.returncode is None, f"the receiver exited with {receiver.returncode}"
        return "Receiving webhooks at" in "".join(printed)

    try:
        await eventually(started, bool, timeout=30, what="the receiver to listen")
        ports = stack_ports()
        async with running_stack(tmp_path / "data", ports):
            # Only what a user's shell has: PATH (curl, python3, bash) and the two variables the first block reads.
            env = {"PATH": os.environ["PATH"], "API": f"http://127.0.0.1:{ports['api']}"}
            env["HOOK"] = f"http://127.0.0.1:{receiver_port}/hooks"
            shell = await asyncio.create_subprocess_exec(
                "bash", "-euo", "pipefail", "-c", script, cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output = (await asyncio.wait_for(shell.communicate(), 120))[0].decode()
            assert shell.returncode == 0, output
            # The first connection, the test send and one event of each type.
            received = await eventually(webhooks, lambda seen: len(seen) >= 5, timeout=60, what="five webhooks")
    finally:
        receiver.terminate()
        await receiver.wait()
        await reading

    shown = "".join(printed)
    events = {(event, check) for event, webhook_id, check in received if "/evt_" in webhook_id}
    assert events == {("ORDER_SHIPPED", "verified"), ("ORDER_ERROR", "verified"), ("TRACKING_UPDATE", "verified")}
    assert [(e, c) for e, webhook_id, c in received if "/test-" in webhook_id] == [("TRACKING_UPDATE", "verified")]
    [first_connection] = [check for _, webhook_id, check in received if "/first-connection/" in webhook_id]
    # Sent as the endpoint is made: before its secret (unsigned), after the secret was made but
    # before its answer reached the file (unchecked: the answer comes FRESH_SECONDS later), or
    # after. Never a signature that fails.
    assert first_connection in {"unsigned", "unchecked", "verified"}
    assert "endpoint ep_" in output and '"result": "success"' in output  # the test send's record
    assert output.count('"deliveries":[{"id":"delivery/default/evt_') == 3, output  # the three 202s
    assert "authorization: Basic shop:********" in shown and "x-shop-token: ********" in shown
    assert "s3cret" not in shown and "shop-tok-Q7" not in shown
