"""The web app: a small page of our own and the JSON API it uses (FastAPI).

Routes (README, "Web page"): the page at / and /runs/{id}; the API under /api; the
page's script, style and the 3D viewer (<model-viewer>, vendored: no CDN) under /static.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ..errors import UserError
from ..toyworld.world import COLORS, SHAPES
from .checks import MAX_BODY_BYTES, BodyTooLarge, parse_request
from .manager import RunManager

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {".glb": "model/gltf-binary", ".obj": "text/plain", ".ply": "application/octet-stream",
               ".png": "image/png", ".mp4": "video/mp4", ".gif": "image/gif"}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(manager: RunManager, auth: tuple[str, str] | None = None,
               backend_args: tuple[str, ...] = ()) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        # The server is stopping (Ctrl-C, SIGTERM): stop the runs, each with its
        # checkpoint, before the process goes.
        await asyncio.to_thread(manager.shutdown)

    app = FastAPI(title="dreamfusion", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.manager = manager
    free_text = "--backend" in backend_args and "toy" not in backend_args

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if auth is not None and not authorised(request, auth):
            return Response("authentication required", status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="dreamfusion"'})
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return error(413, f"the request body is over {MAX_BODY_BYTES // 1024} kB")
        return await call_next(request)

    @app.get("/")
    def index():
        return FileResponse(STATIC / "page.html", media_type="text/html")

    @app.get("/runs/{run_id}")
    def run_page(run_id: str):
        try:
            manager.folder(run_id)
        except KeyError:
            return error(404, f"no run {run_id}")
        return FileResponse(STATIC / "page.html", media_type="text/html")

    @app.get("/api/vocabulary")
    def vocabulary():
        return {"colors": list(COLORS), "shapes": list(SHAPES), "free_text": free_text}

    @app.post("/api/runs", status_code=202)
    async def submit(request: Request):
        body = await request.body()
        try:
            checked = parse_request(body, backend_args)
        except BodyTooLarge as err:
            return error(413, str(err))
        except UserError as err:
            return error(400, str(err))
        return JSONResponse({"id": manager.submit(checked)}, status_code=202)

    @app.get("/api/runs")
    def list_runs():
        keys = ("id", "caption", "status", "step", "steps")
        return [{k: info[k] for k in keys} for info in map(manager.info, manager.ids())]

    @app.get("/api/runs/{run_id}")
    def get_run(run_id: str):
        try:
            return manager.info(run_id)
        except KeyError:
            return error(404, f"no run {run_id}")

    @app.delete("/api/runs/{run_id}")
    def cancel_run(run_id: str):
        return change(manager.cancel, run_id, 200)

    @app.post("/api/runs/{run_id}/resume", status_code=202)
    def resume_run(run_id: str):
        return change(manager.resume, run_id, 202)

    @app.get("/api/runs/{run_id}/files/{name}")
    def get_file(run_id: str, name: str):
        try:
            path = manager.file(run_id, name)
        except KeyError:
            path = None
        if path is None:
            return error(404, f"no file {name!r} in run {run_id}")
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
                            headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def change(action, run_id: str, status: int) -> JSONResponse:
    """Cancel or resume: the run's new state, 404 for no such run, 409 if not possible."""
    try:
        return JSONResponse(action(run_id), status_code=status)
    except KeyError:
        return error(404, f"no run {run_id}")
    except UserError as err:
        return error(409, str(err))


def authorised(request: Request, auth: tuple[str, str]) -> bool:
    """HTTP basic auth against (user, password), compared in constant time."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return bool(sep) and secrets.compare_digest(user.encode(), auth[0].encode()) and \
        secrets.compare_digest(password.encode(), auth[1].encode())
