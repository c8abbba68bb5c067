"""Processes of this machine, read from /proc (no psutil needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def stats() -> Iterator[tuple[int, list[str]]]:
    """Each process's pid and the fields of its ``stat`` after the command name:
    state, ppid, pgrp, … (processes that exit meanwhile are skipped)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
        yield int(entry.name), stat.rsplit(")", 1)[1].split()
