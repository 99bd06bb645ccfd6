"""A private redis-server on a free loopback port, without persistence, for outage tests.

``kill`` is kill -9 (connections drop at once); ``start`` again gives an empty server on the same
port, as a restarted Redis without persistence is.
"""

from __future__ import annotations

import signal
import subprocess

import redis
from ports import free_port
from waiting import wait_until


class RedisServer:
    """A throwaway redis-server that a test may kill -9 and start again."""

    def __init__(self, *extra: str) -> None:
        self.extra = extra  # more redis-server arguments, e.g. "--requirepass", "pw"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no", *self.extra]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._ping, "redis-server to answer")

    def _ping(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.AuthenticationError:
            return True  # up, and asking for the password it was given
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """Kill -9: no shutdown, connections drop at once."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)
            self._proc = None
