"""The error every user-facing entry point (CLI, Python API) raises for a bad request."""
from __future__ import annotations


class UserError(Exception):
    """An error in what the user asked for, in one sentence; nothing was created or lost
    (the CLI prints it and exits with status 2)."""
