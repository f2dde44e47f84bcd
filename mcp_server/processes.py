"""Whether a process id names a live process (the local stack's state file records the pid that wrote it)."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
