"""One HashiCorp Serf agent run as a child process of this Python process.

Every gateway and storage node owns exactly one agent. The agent is configured
through a JSON config file (never flags) because two settings exist only there:
``rpc_auth`` has no command-line flag, and the gossip key must not show up in
``ps`` output. The config file is therefore written with mode 0600.

Contracts:

* Gossip is always encrypted (``encrypt_key`` is required) and the RPC always
  needs the token (``rpc_auth``).
* The child dies with its parent: it gets SIGTERM via ``PR_SET_PDEATHSIG`` when
  the thread that started it dies, so a SIGKILLed gateway or node never leaves
  an orphan agent gossiping "alive" on its behalf. Call :meth:`SerfAgent.start`
  from a long-lived thread (normally the main thread) for the same reason.
* SIGTERM makes serf stop without a graceful leave, so peers see the member
  as ``failed`` (what a crash or restart looks like); :meth:`SerfAgent.stop`
  with ``leave=True`` sends the ``leave`` RPC first, and peers see ``left``.
* ``retry_join`` with a short retry interval means agents may start in any
  order; ``snapshot_path`` lets a restarted agent rejoin the peers it knew.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cluster.serfimport import SerfClient, SerfConnectionError

SERF_BINARY = "serf"
CONFIG_NAME = "serf.json"
LOG_NAME = "serf.log"
SNAPSHOT_NAME = "serf.snapshot"

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 4000


def generate_gossip_key() -> str:
    """Return a fresh gossip key like ``serf keygen``: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class SerfAuthError(SerfConnectionError):
    """The agent rejected the RPC token."""


def connect_rpc(host: str, port: int, rpc_auth: str, timeout: float = 3.0) -> SerfClient:
    """Open an authenticated serf RPC connection, or raise.

    serfclient ignores the error the agent returns for a bad token (every later
    call then hangs until its timeout); we check the ``auth`` reply ourselves and
    raise :class:`SerfAuthError` at once. Connection failures raise serfclient's
    ``SerfConnectionError``. The token never appears in an exception message.
    """
    client = SerfClient(host, port, timeout=timeout)
    try:
        resp = client.connection.auth(rpc_auth)
    except BaseException:
        client.close()
        raise
    error = resp.head.get("Error") if isinstance(resp.head, dict) else "no reply"
    if error:
        client.close()
        raise SerfAuthError(f"serf RPC at {host}:{port} refused the token: {error}")
    return client


def split_hostport(addr: str) -> tuple[str, int]:
    """Split ``"host:port"`` (or ``"[v6]:port"``) into host and integer port."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {addr!r}")
    return host.strip("[]"), int(port)


@dataclass
class SerfConfig:
    """Everything one agent needs. ``tags`` carries role, api, zone and capacity."""

    node_name: str
    bind: str
    rpc_addr: str
    tags: dict[str, str]
    encrypt_key: str
    rpc_auth: str
    join: list[str]
    data_dir: Path
    reconnect_interval: str = "2s"
    reconnect_timeout: str = "1h"  # a failed member is forgotten (reaped) after this
    advertise: str | None = None
    retry_interval: str = "1s"  # serf refuses less (it warns and uses 1s)

    def to_json(self) -> dict[str, object]:
        """The serf config-file document (holds both secrets: keep it 0600)."""
        if not self.encrypt_key:
            raise ValueError("encrypt_key is required: gossip is always encrypted")
        if not self.rpc_auth:
            raise ValueError("rpc_auth is required: the agent RPC is always authenticated")
        doc: dict[str, object] = {
            "node_name": self.node_name,
            "bind": self.bind,
            "rpc_addr": self.rpc_addr,
            "tags": dict(self.tags),
            "encrypt_key": self.encrypt_key,
            "rpc_auth": self.rpc_auth,
            "retry_join": list(self.join),
            "retry_interval": self.retry_interval,
            "reconnect_interval": self.reconnect_interval,
            "reconnect_timeout": self.reconnect_timeout,
            "snapshot_path": str(Path(self.data_dir) / SNAPSHOT_NAME),
            # A node that left gracefully and is started again should come back.
            "rejoin_after_leave": True,
            "log_level": "info",
        }
        if self.advertise:
            doc["advertise"] = self.advertise
        return doc


def _pdeathsig_preexec(parent_pid: int) -> Callable[[], None]:
    """preexec_fn for the child: SIGTERM when the parent dies, even by SIGKILL."""

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


class SerfAgent:
    """A serf agent child process. Not thread-safe: one owner starts and stops it."""

    def __init__(self, config: SerfConfig) -> None:
        self.config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self._rpc_host, self._rpc_port = split_hostport(config.rpc_addr)

    @property
    def pid(self) -> int | None:
        """The agent's process id while it runs, else None."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        return Path(self.config.data_dir) / LOG_NAME

    @property
    def config_path(self) -> Path:
        return Path(self.config.data_dir) / CONFIG_NAME

    def start(self, timeout: float = 10.0) -> None:
        """Write the config, spawn the agent, and return once its RPC answers.

        Raises RuntimeError (with the tail of serf.log) if the agent exits or its
        RPC does not answer within ``timeout`` seconds; the child is killed then.
        """
        if self.pid is not None:
            raise RuntimeError(f"serf agent {self.config.node_name!r} already running")
        data_dir = Path(self.config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [SERF_BINARY, "agent", f"-config-file={self.config_path}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_pdeathsig_preexec(os.getpid()),
                close_fds=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RuntimeError(
                    f"serf agent {self.config.node_name!r} exited with {code}:\n{self._log_tail()}"
                )
            if self._rpc_answers():
                return
            if time.monotonic() >= deadline:
                self._kill()
                raise RuntimeError(
                    f"serf agent {self.config.node_name!r} RPC did not answer within "
                    f"{timeout}s:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def client(self, timeout: float = 3.0) -> SerfClient:
        """A new authenticated RPC client for this agent; the caller closes it."""
        return connect_rpc(self._rpc_host, self._rpc_port, self.config.rpc_auth, timeout)

    def set_tags(self, tags: dict[str, str], delete: list[str] | None = None) -> None:
        """Change this agent's tags at runtime (serf's ``tags`` RPC); peers see a
        member-update within a second. The change is not written to the config
        file, so a restart goes back to ``config.tags``."""
        client = self.client()
        try:
            resp = client.connection.call(
                "tags", {"Tags": dict(tags), "DeleteTags": list(delete or [])},
                expect_body=False,
            )
        finally:
            client.close()
        error = resp.head.get("Error") if isinstance(resp.head, dict) else None
        if error:
            raise RuntimeError(f"serf tags RPC failed: {error}")

    def stop(self, leave: bool = False, timeout: float = 5.0) -> None:
        """Stop the agent; idempotent.

        ``leave=True``: graceful ``leave`` RPC first (peers see ``left``; serf exits
        by itself afterwards). Otherwise SIGTERM, which serf treats as a crash
        (peers see ``failed``). Either way, SIGKILL if it outlives ``timeout``.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None and leave:
            try:
                client = self.client(timeout=timeout)
                try:
                    client.connection.call("leave", expect_body=False)
                finally:
                    client.close()
            except Exception:  # any failure: fall back to SIGTERM below
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._kill()

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None

    def _write_config(self) -> None:
        text = json.dumps(self.config.to_json(), indent=2)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # O_CREAT's mode does not apply to an existing file; force it.
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    def _rpc_answers(self) -> bool:
        try:
            client = self.client(timeout=1.0)
        except Exception:  # not listening yet
            return False
        try:
            client.stats()
            return True
        except Exception:  # listening but not ready yet
            return False
        finally:
            client.close()

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - _LOG_TAIL_BYTES))
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return f"(no log: {e})"
