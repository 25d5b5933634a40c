"""`dreamfusion serve`: the web app on a local port (uvicorn), its runs stopped cleanly
(checkpoints kept) when the server stops."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

from ..errors import UserError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def require_web_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError('the web app needs its extra: pip install "dreamfusion[web]"') from None


def parse_auth(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise UserError("--auth expects USER:PASS, both non-empty")
    return user, password


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def serve(host: str, port: int, runs_dir: Path, auth: str | None, max_parallel: int,
          backend_args: tuple[str, ...] = ()) -> None:
    require_web_extra()
    credentials = parse_auth(auth)
    check_port_free(host, port)
    import uvicorn

    from .app import create_app
    from .manager import RunManager
    if host not in LOOPBACK:
        print(f"dreamfusion: warning: listening on {host}: anyone who can reach this machine "
              "on the network can start runs" + ("" if credentials else
                                                 " (no --auth given)"), file=sys.stderr)
    manager = RunManager(runs_dir, max_parallel, backend_args)
    app = create_app(manager, credentials, backend_args)
    print(f"dreamfusion: serving http://{host}:{port}/ (runs in {runs_dir})", file=sys.stderr,
          flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        manager.shutdown()
