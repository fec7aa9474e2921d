"""HTTP routes of `rdfer app` and `serve()`.

Every error the page can cause comes back as JSON `{"error": "one line"}` with a 4xx
status (400 bad input, 404 unknown, 409 busy, 413 too large), never a traceback; an
unexpected failure is a 500 with a one-line message, its traceback in a log file (RDFER_DEBUG=1:
on the console).
Files are served only from the package's own page and from the work folder
(`WorkFolder.inside`); the FastAPI docs pages (which load scripts from a CDN) are off; a
state-changing request (POST, PUT, PATCH, DELETE) is served only from this server's own page: one from
another site's page is refused (`_foreign_origin`: Origin, Referer, Sec-Fetch-Site against the Host),
and every one must carry the server's page token (`X-RDFER-Token`: a random value made when the
server starts, written into the page it serves, which no other site's page can read); every response
carries a Content-Security-Policy that lets the page load nothing from anywhere but this server.
"""

import hmac
import logging
import secrets
import socket
from urllib.parse import urlsplit
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.requests import ClientDisconnect

from rdfer.app.predict import ACCEPTED, Busy, PredictJobs, TooLarge
from rdfer.app.work import AuditFolders, WorkFolder
from rdfer.errors import RdferError
from rdfer.utils.crash import os_error_line, unexpected_line

STATIC = Path(__file__).resolve().parent / "static"
PAGE_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
TOKEN_HEADER = "X-RDFER-Token"  # the page token every state-changing request carries
TOKEN_SLOT = '<meta name="rdfer-token" content="">'  # in index.html; the server fills in its token
log = logging.getLogger("rdfer.app")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(work_dir, *, max_upload_mb: float = 500.0, options=None, allowed_hosts=None) -> FastAPI:
    """The application over the work folder `work_dir`.

    allowed_hosts: Host header names accepted (None: any); a server on 127.0.0.1 accepts
        only loopback names, so a web page elsewhere cannot reach it through DNS rebinding.
    """
    work = WorkFolder(work_dir)
    jobs = PredictJobs(work, max_upload_mb=max_upload_mb, options=options)
    audits = AuditFolders(work)
    app = FastAPI(title="rdfer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.work, app.state.jobs, app.state.audits = work, jobs, audits
    app.state.token = secrets.token_urlsafe(32)  # made anew at each start: a page of an earlier server has none

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = _host_name(request.headers.get("host") or "")
        if allowed_hosts is not None and host not in allowed_hosts:
            return _error(400, f"host {host!r} refused: open the address `rdfer app` printed")
        foreign = _foreign_origin(request)
        if foreign:
            return _error(403, f"a {request.method} from {foreign} refused: only this server's own page may change "
                               "anything; open the address `rdfer app` printed")
        if request.method in STATE_CHANGING and not _has_token(request, app.state.token):
            return _error(403, f"a {request.method} without this server's page token refused: only the page "
                               "`rdfer app` serves may change anything; reload that page (the server may have "
                               "restarted)")
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(RdferError)
    async def rdfer_error(request, error: RdferError):
        status = 409 if isinstance(error, Busy) else 413 if isinstance(error, TooLarge) else 400
        return _error(status, str(error))

    @app.exception_handler(OSError)
    async def os_error(request, error: OSError):  # a folder it cannot read, a link loop, a full disk
        return _error(400, os_error_line(error))

    @app.exception_handler(Exception)
    async def unexpected(request, error: Exception):  # one line; the traceback in a log file (rdfer.utils.crash)
        return _error(500, unexpected_line(error, "app", [request.url.path]))

    # ----------------------------------------------------------------------------- the page

    @app.get("/")
    def page():
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace(TOKEN_SLOT, f'<meta name="rdfer-token" content="{app.state.token}">', 1))

    @app.get("/static/{name}")
    def static(name: str):
        if name not in PAGE_FILES:
            return _error(404, f"no page file {name!r}")
        return FileResponse(STATIC / name, media_type=PAGE_FILES[name])

    @app.get("/api/info")
    def info():
        return {"work_folder": str(work.root), "max_upload_mb": jobs.max_bytes / 2**20,
                "accepted": list(ACCEPTED)}

    @app.get("/files/{relative:path}")
    def files(relative: str, download: bool = False):
        path = work.inside(relative)
        if not path.is_file():
            return _error(404, f"{relative}: no such file in the work folder")
        return FileResponse(path, filename=path.name if download else None)

    # ----------------------------------------------------------------------------- predict

    @app.post("/api/predict/jobs")
    def new_job():
        return jobs.create().status()

    @app.put("/api/predict/jobs/{job_id}/files")
    async def upload(job_id: str, request: Request, name: str):
        length = request.headers.get("content-length")
        job, temp, final = jobs.begin_upload(job_id, name, int(length) if length and length.isdigit() else None)
        size, ok = 0, False
        try:
            with open(temp, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > jobs.max_bytes:
                        break
                    f.write(chunk)
                else:
                    ok = True
        except ClientDisconnect:
            pass
        except BaseException as error:  # a full disk, a cancelled request...: no partial file, the server free
            jobs.abort_upload(temp, error)
        return jobs.end_upload(job, temp, final, name, size, ok)

    @app.post("/api/predict/jobs/{job_id}/start")
    def start(job_id: str, body: dict):
        return jobs.start(job_id, checkpoint=body.get("checkpoint"), folder=body.get("folder"))

    @app.get("/api/predict/jobs/{job_id}")
    def job_status(job_id: str):
        return jobs.get(job_id).status()

    # ----------------------------------------------------------------------------- audit

    def audit_view(key, folder):
        url = "/files/" + folder.decisions_path.relative_to(work.root).as_posix()
        return {"key": key, **folder.summary(), "decisions_url": url, "rows": folder.clips()}

    @app.post("/api/audit/open")
    def open_audit(body: dict):
        return audit_view(*audits.open(str(body.get("folder") or "")))

    @app.get("/api/audit/{key}")
    def audit_rows(key: str):
        return audit_view(key, audits.get(key))

    @app.post("/api/audit/{key}/decide")
    def decide(key: str, body: dict):
        return audits.get(key).decide(str(body.get("id", "")), str(body.get("decision") or ""),
                                      str(body.get("new_label") or ""))

    @app.get("/api/audit/{key}/preview")
    def preview(key: str, id: str):
        return FileResponse(audits.get(key).preview(id), media_type="image/jpeg")

    return app


STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


def _foreign_origin(request: Request) -> str | None:
    """The other site a state-changing request comes from (None: this server's own page, or no browser).

    A browser names the page that sends a request in Origin (every cross-site POST, PUT, DELETE, with or
    without a body), else in Referer, and in Sec-Fetch-Site; each is checked against this server's Host.
    A request without any of them (curl, a script) comes from no web page, so no page can forge it.
    """
    if request.method not in STATE_CHANGING:
        return None
    host = (request.headers.get("host") or "").lower()
    site = (request.headers.get("sec-fetch-site") or "").lower()
    if site and site not in ("same-origin", "none"):
        return f"a {site} page"
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value is None:
            continue
        parsed = urlsplit(value.strip())
        if value.strip().lower() == "null" or not parsed.netloc or parsed.netloc.lower() != host:
            return value.strip()[:100] or "an unnamed page"
        return None
    return None


def _has_token(request: Request, token: str) -> bool:
    """Whether the request carries this server's page token (compared in constant time)."""
    given = request.headers.get(TOKEN_HEADER) or ""
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())


def _host_name(header: str) -> str:
    """The name part of a Host header: `127.0.0.1:8765` -> `127.0.0.1`, `[::1]:80` -> `[::1]`."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); RdferError when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise RdferError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                         "choose another --port (0: any free one)") from None
    sock.listen(64)
    return sock


def serve(host: str, port: int, work_dir, *, max_upload_mb: float = 500.0, options=None) -> None:
    """Run the server until Ctrl-C; prints its address (and the work folder) first."""
    import uvicorn

    sock = bind(host, port)
    allowed = set(LOOPBACK) if host in LOOPBACK else None
    app = create_app(work_dir, max_upload_mb=max_upload_mb, options=options, allowed_hosts=allowed)
    shown = f"[{host}]" if ":" in host else host
    print(f"rdfer app: http://{shown}:{sock.getsockname()[1]}/ (work folder {app.state.work.root}; "
          "Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
