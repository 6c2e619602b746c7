"""The explorer app: ``create_app(run_dir)`` loads a run once and serves the page and its JSON API.

Routes live in one APIRouter per panel (routers/); the page is static files shipped in the package
(static/), served as they are: no build step, nothing fetched from elsewhere. Every answer to bad input is
a 4xx whose JSON body is {"detail": "<field>: <one line>"}; request bodies are bounded before they are read
(MAX_JSON_BYTES, uploads MAX_UPLOAD_BYTES plus the multipart envelope).
"""
from __future__ import annotations

import logging
import socket
import time
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latentspace.api.points import MAX_UPLOAD_BYTES, ImageTooLarge, NotAnImage
from latentspace.explorer.batching import Batcher
from latentspace.explorer.deps import decoded_batch
from latentspace.explorer.routers import attributes, decode, describe, interpolate, maps, upload
from latentspace.explorer.state import load_explorer
from latentspace.utils.progress import NULL_PROGRESS, Progress
from latentspace.utils.version import __version__

log = logging.getLogger(__name__)

DOCS_STATIC = "/docs-static"  # Swagger UI's own files, shipped in fastapi-offline
MAX_JSON_BYTES = 256_000  # a 1024-value latent with every slider is under 60 kB
UPLOAD_PATH = "/api/upload"
MULTIPART_ENVELOPE = 64 * 1024  # form boundaries and part headers around the file
PAGE_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
]
DESCRIPTION = """\
The JSON API behind the latentspace explorer page. Images the model makes come back as data URLs inside
the JSON (uncompressed BMP from the decode endpoints, whose answers follow the pointer; PNG elsewhere); real images (train, test, uploads) are addressed by split and index at `/api/images/{split}/{index}.png`.
Bad input is answered with a 4xx and `{"detail": "<field>: <one line>"}`.
"""


def create_app(run_dir: str | Path, map_method: str = "pca", seed: int = 0,
               progress: Progress = NULL_PROGRESS) -> FastAPI:
    """The explorer over the run folder ``run_dir``: everything it needs is loaded now, on the CPU.

    map_method: the map shown first; 'tsne' or 'umap' is computed now when not cached beside the run (tens
    of seconds), and cached maps are offered as well. seed: the t-SNE / UMAP seed."""
    start = time.perf_counter()
    explorer = load_explorer(run_dir, map_method, seed, progress)
    # FastAPIOffline serves /docs with Swagger UI's files from the package instead of a CDN, so it works offline.
    app = FastAPIOffline(title=f"latentspace explorer: {explorer.name}", description=DESCRIPTION, version=__version__,
                         static_url=DOCS_STATIC)
    app.state.explorer = explorer
    app.state.decoder = Batcher(partial(decoded_batch, explorer))
    for module in (maps, decode, interpolate, attributes, upload, describe):
        app.include_router(module.router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ImageTooLarge, _status(413))
    app.add_exception_handler(NotAnImage, _status(415))
    upload_limit = (MAX_UPLOAD_BYTES + MULTIPART_ENVELOPE, f"an image upload may be at most {_size(MAX_UPLOAD_BYTES)}")
    app.add_middleware(BodyLimit, default=MAX_JSON_BYTES, limits={UPLOAD_PATH: upload_limit})
    app.add_middleware(PageHeaders)
    app.mount("/", StaticFiles(packages=[("latentspace.explorer", "static")], html=True), name="page")
    log.info("explorer ready in %.2f s", time.perf_counter() - start)
    return app


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A TCP socket bound to host:port and listening (port 0: any free port), to hand to uvicorn.Server.run;
    ValueError in one line if it cannot be had.

    The socket is made from getaddrinfo's answer, so its protocol is IPPROTO_TCP: asyncio turns Nagle's
    algorithm off (TCP_NODELAY) only on such sockets, and without that every answer waits ~40 ms for the
    client's delayed ACK between its header and body writes."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             proto=socket.IPPROTO_TCP)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        raise ValueError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port or --host") from None
    return sock


def _where(loc: tuple) -> str:
    """('body', 'z', 3) -> 'z[3]'; ('path', 'index') -> 'index'."""
    parts = list(loc[1:] if len(loc) > 1 and loc[0] in ("body", "query", "path", "header") else loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    message = " ".join(f"{_where(tuple(first.get('loc', ())))}: {first.get('msg', 'invalid')}{more}".split())
    return JSONResponse({"detail": message}, status_code=422)


def _status(code: int):
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"file: {exc}"}, status_code=code)

    return handler


class BodyLimit:
    """Reject a request body over its path's limit with 413, by its Content-Length before reading it, and by
    counting what arrives when there is none (chunked)."""

    def __init__(self, app: ASGIApp, default: int, limits: dict[str, tuple[int, str]]) -> None:
        """default: bytes for any path; limits: path -> (bytes, how to say the limit)."""
        self.app, self.limits = app, limits
        self.default = (default, f"the limit is {_size(default)}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, says = self.limits.get(scope["path"], self.default)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            size = _size(int(length)) if length.isdigit() else "of unknown size"
            await JSONResponse({"detail": f"body: the request is {size}; {says}"},
                               status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"body: the request is too large; {says}")
            return message

        await self.app(scope, counted, send)


def _size(n: int) -> str:
    return f"{n / 1e6:.3g} MB" if n >= 1e6 else f"{n / 1e3:.3g} kB"


class PageHeaders:
    """The page may load only what this server serves (no CDN, no third party). /docs (Swagger UI, served from
    the package by fastapi-offline) runs an inline script, so it and its files are left without the policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/docs", "/redoc", DOCS_STATIC)):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *PAGE_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
