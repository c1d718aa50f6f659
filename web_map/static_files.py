"""The pages' static files (our JS/CSS and the vendored Leaflet), served by the app.

URLs made by `static_url` carry a hash of the file's content (`?v=...`), so browsers may
keep them for a year (`immutable`): a phone on a poor connection downloads Leaflet once.
Text files are sent gzip-compressed when the browser accepts it.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fastapi import Request, Response

from geo_api.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")
LONG_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=300"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes | None
    media_type: str
    digest: str


@lru_cache(maxsize=256)
def _load(path: Path, mtime_ns: int) -> StaticFile:
    body = path.read_bytes()
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".js":
        media = "application/javascript"
    if media.startswith("text/") or media == "application/javascript":
        media += "; charset=utf-8"
    gz = gzip.compress(body, 6) if media.startswith(TEXT_TYPES) and len(body) > 1024 else None
    return StaticFile(body, gz, media, hashlib.sha256(body).hexdigest()[:16])


def resolve(rel: str) -> Path:
    path = (STATIC_DIR / rel).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise NotFound(f"no static file {rel!r}")
    return path


def load(rel: str) -> StaticFile:
    path = resolve(rel)
    return _load(path, path.stat().st_mtime_ns)


def static_url(rel: str) -> str:
    """/static/<rel>?v=<content hash>."""
    return f"/static/{rel}?v={load(rel).digest}"


def serve(request: Request, rel: str) -> Response:
    f = load(rel)
    etag = f'"{f.digest}"'
    headers = {"ETag": etag, "Vary": "Accept-Encoding",
               "Cache-Control": LONG_CACHE if request.query_params.get("v") == f.digest else SHORT_CACHE}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    body = f.body
    if f.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = f.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=f.media_type, headers=headers)
