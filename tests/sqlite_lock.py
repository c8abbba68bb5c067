"""Another process's hold on a test's SQLite PIN store (WAL mode), to make its readers wait.

In WAL mode readers do not wait for writers: ``BEGIN EXCLUSIVE`` (the hold this helper
used before) no longer stops a PIN check, and ``PRAGMA locking_mode=EXCLUSIVE`` cannot be
taken while the app's pooled connections are open (each keeps a shared lock on the
database file). What does stop a WAL reader is a WAL-index recovery in progress in
another process: the reader finds the ``-shm`` header invalid, cannot take the write
lock to rebuild it, sees the recover lock held, and waits in its busy handler (up to its
``timeout``) before "database is locked" — the same error and timing as a rollback
journal's exclusive lock.

So the hold is a helper process that takes, on the ``-shm`` file, the WAL-index's write,
checkpoint and recover locks (bytes 120-122, as https://www.sqlite.org/walformat.html
documents for the unix VFS) and clears ``isInit`` in the header's first copy: what a
process recovering the index looks like. Writers wait on the write lock too. Releasing
restores the byte before it unlocks, so no recovery follows. POSIX locks belong to a
process, which is why the holder must be another one: locks of the test's own process
would not conflict with its SQLite connections.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ivr.config import Settings

# The holder: lock the three bytes, spoil the header, say so, wait for stdin to close,
# restore the byte, unlock (by exiting).
_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 3, 120, os.SEEK_SET)
is_init = os.pread(fd, 1, 12)
os.pwrite(fd, b"\\x00", 12)
print("held", flush=True)
sys.stdin.read()
os.pwrite(fd, is_init, 12)
"""


class Hold:
    """A running holder process; :meth:`release` frees the store."""

    def __init__(self, database: Path) -> None:
        shm = database.with_name(database.name + "-shm")
        if not shm.exists():
            raise RuntimeError(f"{shm} does not exist: is the store open and in WAL mode?")
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-c", _HOLDER, str(shm)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "held":
            self.release()
            raise RuntimeError(f"could not lock {shm}")

    def release(self) -> None:
        """Restore the index header, then end the holder (which drops its locks)."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()


def locked_file(database: Path) -> Hold:
    """A hold on the SQLite file ``database`` (open, in WAL mode) that blocks its readers
    and writers until :meth:`Hold.release`."""
    return Hold(database)


def locked(settings: Settings) -> Hold:
    """A hold on the PIN store of ``settings`` that blocks its readers and writers."""
    return locked_file(Path(settings.pin_store.url.removeprefix("sqlite:///")))
