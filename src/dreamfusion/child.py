"""`python -m dreamfusion.child ARGS`: the command line, in a process that stops (with its
checkpoint, as on Ctrl-C) when the process that started it dies, however it dies: the web
server, a batch driver, a Ray worker. A run then never outlives its owner, and a retry
never finds the run still held by an orphan."""
from __future__ import annotations

import os
import signal
import sys


def stop_with_parent() -> None:
    """Ask Linux for SIGTERM when the parent exits (PR_SET_PDEATHSIG); elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the server died before the request took effect
        sys.exit(128 + signal.SIGTERM)


if __name__ == "__main__":
    stop_with_parent()
    from .cli import main
    sys.exit(main(sys.argv[1:]))
