"""Who holds a lease: host, pid and process start time, and whether that holder is gone."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _process_start(pid: int) -> str:
    # The start time tells a live process from a new one that reused a dead holder's pid.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def current_owner() -> str:
    """Return this process's lease-holder name: ``host|pid|start``."""
    return f"{socket.gethostname()}|{os.getpid()}|{_process_start(os.getpid())}"


def owner_is_dead(owner: str) -> bool:
    """Return whether a lease holder on this host is known to be gone (unknowable elsewhere)."""
    host, pid, start = owner.split("|")
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return start != "?" and _process_start(int(pid)) != start
