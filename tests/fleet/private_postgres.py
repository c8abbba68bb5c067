"""A PostgreSQL server of the test's own (``initdb``, ``pg_ctl``) that it may freeze.

The machine's shared server must never be stopped; this one lives in a temporary
directory on a free port and goes away with the test. :meth:`PrivatePostgres.freeze`
sends SIGSTOP to the postmaster and every backend (a hung server: TCP still accepts and
ACKs, nothing answers), :meth:`PrivatePostgres.thaw` sends SIGCONT.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path
from types import TracebackType

import pytest

from tests.fleet.ports import free_port
from tests.fleet.procs import stats

BIN = Path("/usr/lib/postgresql")
# initdb refuses to run as root: as root, the server runs as the packages' own user;
# otherwise as the current user. Either way its superuser role is called OWNER.
OWNER = "postgres"
START_TIMEOUT_S = 30


def _bin(name: str) -> Path:
    """The newest installed PostgreSQL's ``name`` (initdb, pg_ctl); skips the test, with
    the reason shown, on a machine without PostgreSQL (as the shared-server tests do)."""
    found = sorted(BIN.glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.skip(f"no PostgreSQL {name} under {BIN} (install postgresql to run this)")
    return found[-1]


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc."""
    return [child for child, fields in stats() if int(fields[1]) == pid]


class PrivatePostgres:
    """initdb + pg_ctl on 127.0.0.1:<free port>, trust auth; a context manager."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"ivr-pg-{self.port}-"))
        self.data = self.dir / "data"
        self.frozen: list[int] = []

    @property
    def url(self) -> str:
        """SQLAlchemy URL of its ``postgres`` database."""
        return f"postgresql+psycopg://{OWNER}@127.0.0.1:{self.port}/postgres"

    def __enter__(self) -> PrivatePostgres:
        try:
            initdb = _bin("initdb")
            if os.geteuid() == 0:  # initdb refuses root: the directory goes to OWNER
                owner = pwd.getpwnam(OWNER)
                os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as_owner(initdb, "-D", self.data, "-A", "trust", "-U", OWNER, "--no-sync")
            self.start()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        self._as_owner(
            _bin("pg_ctl"), "-D", self.data, "-l", self.dir / "server.log", "-w",
            "-t", str(START_TIMEOUT_S), "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off",
            "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server at once (connections refused from then on); no-op if down."""
        self.thaw()
        if (self.data / "postmaster.pid").exists():
            self._as_owner(_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")

    def postmaster(self) -> int:
        """The server's main process."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: the server hangs."""
        main = self.postmaster()
        self.frozen = [main, *_children(main)]
        for pid in self.frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped."""
        for pid in self.frozen:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []

    def log(self, chars: int = 2000) -> str:
        """The end of the server's log."""
        path = self.dir / "server.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _as_owner(self, *argv: object) -> None:
        done = subprocess.run(  # noqa: S603 - fixed argv
            [str(a) for a in argv], user=OWNER if os.geteuid() == 0 else None, cwd=self.dir,
            capture_output=True, text=True,
            timeout=START_TIMEOUT_S + 10, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{Path(str(argv[0])).name} failed: {done.stderr[-2000:]}")
