"""A throwaway PostgreSQL server on a temp dir and a free port: the tests' session server
(tests/conftest.py) and the benchmarks that need a real database (benchmarks/line_scale.py,
benchmarks/line_spool.py) start it the same way.

Debian's binaries (STEELSCAN_PG_BIN, else the newest /usr/lib/postgresql/<major>/bin); as root the
server runs as the unprivileged `postgres` user (PostgreSQL refuses root). `fast=True` turns off
fsync, synchronous commit and full-page writes (tests: speed); `fast=False` keeps PostgreSQL's
durable defaults (benchmarks: what a plant's server does).

    server = PostgresServer("pw")   # initdb
    server.start(); ... server.url ...; server.kill(); server.start(); server.remove()
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bin() -> Path:
    """STEELSCAN_PG_BIN, else the newest Debian PostgreSQL (/usr/lib/postgresql/<major>/bin)."""
    if os.environ.get("STEELSCAN_PG_BIN"):
        return Path(os.environ["STEELSCAN_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]) if
                   p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = pg_bin()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable() -> str | None:
    """Why no server can be started here (None: it can)."""
    if not ((PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()):
        return f"PostgreSQL binaries not found in {PG_BIN} (`make postgres` installs them)"
    if os.geteuid() == 0:
        import pwd
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


class PostgresServer:
    """initdb in a new temp dir (user `steelscan`, scram-sha-256 with `password`); `url` is its
    database `postgres`. Raises subprocess.CalledProcessError when initdb fails."""

    def __init__(self, password: str, *, fast: bool = True, prefix: str = "steelscan-pg-") -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.data, self.port, self.fast = self.root / "data", free_port(), fast
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        (self.root / "pw").write_text(password + "\n")
        os.chmod(self.root / "pw", 0o644)
        self.url = f"postgresql://steelscan:{password}@127.0.0.1:{self.port}/postgres"
        try:
            self._run(PG_BIN / "initdb", "-D", self.data, "-U", "steelscan", "--auth=scram-sha-256",
                      f"--pwfile={self.root / 'pw'}", "-E", "UTF8", "--no-sync")
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _run(self, *cmd) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, *map(str, cmd)], check=True, capture_output=True, text=True)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=50"
        if self.fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.root / "log", "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop; mode `immediate` is a crash (no shutdown checkpoint)."""
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def kill(self) -> None:
        self.stop("immediate")

    def log_tail(self, n: int = 2000) -> str:
        log = self.root / "log"
        return log.read_text()[-n:] if log.exists() else ""

    def remove(self) -> None:
        """Stop the server if it runs and delete its directory."""
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
