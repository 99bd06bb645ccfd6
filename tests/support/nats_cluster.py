"""A private 3-node NATS cluster with JetStream on loopback ports, for tests and benchmarks.

Each node is ``nats-server -js`` with its own store directory under ``root``, a client port and
a cluster port, routes to the other two, and the server name ``n1``..``n3``. ``kill`` sends
SIGKILL to one node; ``stop`` ends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ports import free_port

NATS_SERVER = (
    os.environ.get("MDP_TEST_NATS_SERVER")
    or shutil.which("nats-server")
    or ("/usr/sbin/nats-server")
)


@dataclass
class Node:
    name: str
    client_port: int
    cluster_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"


class NatsCluster:
    """Three JetStream nodes on loopback; ``url`` lists them all, comma-separated."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.nodes = [Node(f"n{i + 1}", free_port(), free_port()) for i in range(size)]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            routes = ",".join(
                f"nats://127.0.0.1:{other.cluster_port}"
                for other in self.nodes
                if other is not node
            )
            store = self.root / node.name
            store.mkdir(parents=True, exist_ok=True)
            with (self.root / f"{node.name}.log").open("ab") as log:
                node.proc = self._spawn(node, store, routes, log)

    def _spawn(self, node: Node, store: Path, routes: str, log: Any) -> subprocess.Popen[bytes]:
        args = [
            NATS_SERVER, "-js", "-sd", str(store), "--server_name", node.name,
            "-a", "127.0.0.1", "-p", str(node.client_port), "--cluster_name", "mdp",
            "--cluster", f"nats://127.0.0.1:{node.cluster_port}", "--routes", routes,
        ]  # fmt: skip
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Wait until JetStream answers on every node (a meta leader was elected)."""
        import nats

        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            while True:
                try:
                    nc = await nats.connect(node.url, max_reconnect_attempts=1)
                    try:
                        await nc.jetstream().account_info()
                        break
                    finally:
                        await nc.close()
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def kill(self, name: str) -> None:
        proc = self.node(name).proc
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.wait(10)
                if node.proc.poll() is None:
                    node.proc.kill()
                    node.proc.wait()


async def stream_leader(url: str, stream: str) -> str:
    """Return the server name of ``stream``'s leader."""
    import nats

    nc = await nats.connect(url.split(","), max_reconnect_attempts=1)
    try:
        info: Any = await nc.jetstream().stream_info(stream)
        return str(info.cluster.leader)
    finally:
        await nc.close()
