"""A private single-node ``nats-server -js`` on a free loopback port, for the fault suite.

Its store lives in a directory of the scenario's, so ``kill`` (SIGKILL, connections drop at once)
and ``start`` again keep every stream, as a restarted server does.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

from nats_cluster import NATS_SERVER
from ports import free_port
from waiting import wait_until


class NatsServer:
    """One JetStream server the scenario may kill -9 and start again on the same port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        store = self.root / "store"
        store.mkdir(parents=True, exist_ok=True)
        args = [NATS_SERVER, "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(self.port)]
        with (self.root / "nats.log").open("ab") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._ready, "nats-server to answer")

    def _ready(self) -> bool:
        import asyncio

        return asyncio.run(_jetstream_answers(self.url))

    def kill(self) -> None:
        """Kill -9: no shutdown, connections drop at once."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)
            self._proc = None


async def _quiet(exc: Exception) -> None:
    """A refused connection while the server starts is expected: not worth a logged error."""


async def _jetstream_answers(url: str) -> bool:
    import nats

    try:
        nc: Any = await nats.connect(
            url,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            connect_timeout=0.5,
            error_cb=_quiet,
        )
    except Exception:
        return False
    try:
        await nc.jetstream().account_info()
        return True
    except Exception:
        return False
    finally:
        await nc.close()
