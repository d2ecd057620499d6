"""The labelling web app (FastAPI): people compare two clips (or two responses to a prompt) of a run's
preference store, while training reads their answers from the same store.

Every request carries a labeller's token (``?token=`` or ``Authorization: Bearer``): 401 without a
valid one. Endpoints:

GET  /                  the page (plain HTML + JS)
GET  /api/next          lease the next query: {"query": {...} or null, "message", "progress", ...}
POST /api/answer        {"query_id": int, "choice": "left" | "right" | "equal" | "cant_tell"}, or for
                        a rating query {"query_id": int, "rating": int}, for a ranking query
                        {"query_id": int, "ranking": [positions, best first]} (or "cant_tell")
POST /api/undo          delete your latest answer; its query is leased back to you
GET  /api/progress      {"answered", "budget", "pending", "yours"}
GET  /clips/{id}.mp4    a segment's clip (rendered once, cached beside the store)
GET  /admin, /api/stats agreement statistics (admin labellers only, else 403)

An answer is committed (SQLite WAL, synchronous=FULL) before its response is sent.
"""

import html
import json
import string
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from prefrl.labelling.render import ClipRenderer, task_description
from prefrl.preferences.queue import LabellerAccount, LabelQueue, QueueError
from prefrl.preferences.store import PreferenceStore

HERE = Path(__file__).parent
CLIP_TIMEOUT_S = 120.0
"""Longest a clip request waits for its rendering."""
WAITING_MESSAGE = "waiting for new clips"
NO_TOKEN = "no valid token: open your personal URL (`prefrl label add-labeller NAME` prints one)"
RANK_DESCRIPTION = "Rank the responses to the prompt from best to worst."
RATE_TEXT_DESCRIPTION = "How good is this response to the prompt? 1 (worst) to {} (best)."
RENDER_AHEAD = 2
"""Pending queries after the one shown whose clips are rendered in advance."""


MAX_ID = 2**63 - 1
"""Largest id SQLite stores: a larger one is a 422, not an overflow."""
MAX_BODY_BYTES = 4096
"""Largest request body accepted (413 above): an answer is a few dozen bytes."""

Id = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
"""A query id: a JSON integer (not "405", 405.0 or true) in SQLite's range."""


Position = Annotated[int, Field(strict=True, ge=0, le=99)]
"""A point of a rating scale, or a position in a ranking query: a JSON integer."""


class AnswerBody(BaseModel):
    query_id: Id
    choice: Annotated[str, Field(max_length=32)] | None = None
    """A comparison's answer (left, right, equal, cant_tell); cant_tell for a rating query too."""
    rating: Position | None = None
    """A rating query's answer: 0 (worst) .. n - 1 (best)."""
    ranking: Annotated[list[Position], Field(max_length=9)] | None = None
    """A ranking query's answer: the positions of its items as shown, best first."""


class UndoBody(BaseModel):
    query_id: Id | None = None
    """Undo only if the labeller's last answer is to this query (what the page saved)."""


class BodyLimit:
    """ASGI middleware: a request whose body exceeds ``MAX_BODY_BYTES`` gets 413 before the app reads
    it (by its Content-Length, or as the chunks arrive)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await too_large(send)
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await too_large(send)


class BodyTooLarge(Exception):
    pass


async def too_large(send: Any) -> None:
    body = json.dumps({"detail": f"request body over {MAX_BODY_BYTES} bytes: send only the answer"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class LabellingContext:
    """What every request needs: the store's path, the clip renderer, the lease length."""

    def __init__(
        self, store_path: Path, clip_dir: Path, lease_seconds: float, render_ahead: int | None
    ) -> None:
        if not Path(store_path).is_file():
            raise ValueError(f"no preference store at {store_path}: pass a run directory of `prefrl rlhp`")
        self.store_path = Path(store_path)
        self.lease_seconds = lease_seconds
        self.render_ahead = render_ahead
        with PreferenceStore(self.store_path) as store:
            row = store.db.execute("SELECT value FROM meta WHERE key = 'env_id'").fetchone()
        self.env_id: str | None = None if row is None else row[0]
        self.renderer = None if self.env_id is None else ClipRenderer(self.env_id, clip_dir)

    def known_token(self, token: str | None) -> bool:
        with PreferenceStore(self.store_path, any_thread=True) as store:
            return LabelQueue(store).labeller_for_token(token) is not None

    def queue(self) -> Iterator[LabelQueue]:
        """A request's own connection (FastAPI may open and close it in different threads)."""
        store = PreferenceStore(self.store_path, any_thread=True)
        try:
            yield LabelQueue(store, self.lease_seconds)
        finally:
            store.close()

    def prerender(self, store: PreferenceStore, segment_ids: list[int]) -> None:
        """Start rendering these segments' clips (returns at once)."""
        if self.renderer is None:
            return
        for segment_id, segment in zip(segment_ids, store.segments(segment_ids), strict=True):
            if segment.render_state is not None:
                self.renderer.request(segment_id, segment.render_state, urgent=False)


def create_app(
    store_path: Path,
    clip_dir: Path | None = None,
    lease_seconds: float = 300.0,
    render_ahead: int | None = RENDER_AHEAD,
) -> FastAPI:
    """The app over the store at ``store_path``; clips go to ``clip_dir`` (default: ``clips/`` beside
    the store). ``render_ahead``: pending queries after the one shown whose clips are rendered in
    advance (None: clips are rendered only when the page asks for them)."""
    clip_dir = clip_dir or Path(store_path).parent / "clips"
    context = LabellingContext(store_path, clip_dir, lease_seconds, render_ahead)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        if context.renderer is not None:
            context.renderer.close()

    app = FastAPI(
        title="prefrl labelling", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.context = context
    app.add_middleware(BodyLimit)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(QueueError)
    async def queue_error(request: Request, exc: QueueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not context.known_token(token_of(request)):  # who asks comes before what they sent
            return JSONResponse({"detail": NO_TOKEN}, status_code=401)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:300]
        wanted = '{"query_id": int, "choice": str} or {"query_id": int, "rating": int}'
        message = f"bad request ({problems}): send JSON {wanted}"
        return JSONResponse({"detail": message}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 401 and request.url.path == "/":  # a person opened a bad link
            return HTMLResponse(bad_link_page(), status_code=401)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    add_routes(app, context)
    return app


def bad_link_page() -> str:
    """What a person sees on opening a link without a valid token (expired, removed, mistyped)."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>prefrl labelling</title>"
        "<link rel='stylesheet' href='/static/style.css'></head><body><main><h1>This link does not "
        "work</h1><p>It has no valid labeller token: it may be mistyped, expired or revoked. Ask the "
        "person running the training for your personal link (they make one with "
        "<code>prefrl label add-labeller YOUR_NAME --run-dir RUN_DIR</code>).</p></main></body></html>"
    )


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token")


def add_routes(app: FastAPI, context: LabellingContext) -> None:
    """Every endpoint, each group behind the token check its users need."""
    Queue = Annotated[LabelQueue, Depends(context.queue)]

    def labeller(request: Request, queue: Queue) -> LabellerAccount:
        found = queue.labeller_for_token(token_of(request))
        if found is None:
            raise HTTPException(401, NO_TOKEN)
        return found

    Who = Annotated[LabellerAccount, Depends(labeller)]

    def admin(who: Who) -> LabellerAccount:
        if not who.is_admin:
            raise HTTPException(403, f"{who.name} is not an admin: add one with `add-labeller NAME --admin`")
        return who

    add_labeller_routes(app, context, Queue, Who)
    add_clip_route(app, context, Queue, Who)
    add_admin_routes(app, Queue, Annotated[LabellerAccount, Depends(admin)])


def add_labeller_routes(app: FastAPI, context: LabellingContext, Queue: Any, Who: Any) -> None:
    """The page and the labeller's API: next query, answer, undo, progress."""

    @app.get("/", response_class=HTMLResponse)
    def page(who: Who) -> str:
        template = string.Template((HERE / "templates" / "index.html").read_text())
        return template.substitute(name=html.escape(who.name))

    @app.get("/api/next")
    def next_query(who: Who, queue: Queue) -> dict:
        lease = queue.lease(who)
        query = None
        if lease is not None:
            query = {**describe(queue.store, lease.query_id, context), "lease_expires": lease.expires}
        return {
            "query": query,
            "message": WAITING_MESSAGE if query is None else "",
            "progress": queue.progress(who),
            "labeller": who.name,
        }

    @app.post("/api/answer")
    def answer(body: AnswerBody, who: Who, queue: Queue) -> dict:
        comparison = queue.answer(body.query_id, who, body.choice, body.rating, body.ranking)  # committed
        return {"saved": True, "comparison_id": comparison, "progress": queue.progress(who)}

    @app.post("/api/undo")
    def undo(who: Who, queue: Queue, body: UndoBody | None = None) -> dict:
        query = queue.undo(who, None if body is None else body.query_id)
        return {"undone": query, "progress": queue.progress(who)}

    @app.get("/api/progress")
    def progress(who: Who, queue: Queue) -> dict:
        return queue.progress(who)


def add_clip_route(app: FastAPI, context: LabellingContext, Queue: Any, Who: Any) -> None:
    """A segment's clip, rendered once from its saved simulator state and cached."""

    @app.get("/clips/{segment_id}.mp4")
    def clip(segment_id: Annotated[int, PathParam(ge=1, le=MAX_ID)], who: Who, queue: Queue) -> FileResponse:
        if context.renderer is None:
            raise HTTPException(404, "this store holds text pairs, not clips")
        try:
            (segment,) = queue.store.segments([segment_id])
        except ValueError:
            raise HTTPException(404, f"no segment {segment_id}") from None
        if segment.render_state is None:
            raise HTTPException(404, f"segment {segment_id} has no render state (not a run for people)")
        try:
            path = context.renderer.request(segment_id, segment.render_state).result(CLIP_TIMEOUT_S)
        except Exception as exc:  # the page shows the message; the next request tries again
            raise HTTPException(500, f"rendering the clip of segment {segment_id} failed: {exc!r}") from exc
        return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "max-age=86400"})


def add_admin_routes(app: FastAPI, Queue: Any, Admin: Any) -> None:
    """Agreement statistics, for admin labellers only."""

    @app.get("/api/stats")
    def stats(who: Admin, queue: Queue) -> dict:
        return {**queue.agreement(), "progress": queue.progress()}

    @app.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request, who: Admin, queue: Queue) -> str:
        from prefrl.labelling.admin import render_admin

        return render_admin(queue, token_of(request) or "")


def describe(store: PreferenceStore, query_id: int, context: LabellingContext) -> dict[str, Any]:
    """What the page shows for a query: two clips, one clip to rate, or a prompt and two (or K, to
    rank) responses."""
    row = store.db.execute("SELECT segment_1, segment_2 FROM queries WHERE id = ?", (query_id,)).fetchone()
    if store.query_kind(query_id) == "rank":
        prompt, responses = store.text_ranking(query_id)
        return {"id": query_id, "kind": "rank", "description": RANK_DESCRIPTION,
                "prompt": prompt, "responses": responses}  # fmt: skip
    text = store.text_pair(query_id)
    if text is not None and store.query_kind(query_id) == "rate":  # one answer to a prompt
        classes = store.rating_classes()
        return {"id": query_id, "kind": "rate", "description": RATE_TEXT_DESCRIPTION.format(classes),
                "prompt": text[0], "response": text[1], "classes": classes}  # fmt: skip
    if text is not None:
        prompt, first, second = text
        return {"id": query_id, "kind": "text", "description": task_description(None),
                "prompt": prompt, "responses": [first, second]}  # fmt: skip
    if context.render_ahead is not None:  # this query's clips first, then the next ones
        upcoming = store.db.execute(
            "SELECT segment_1, segment_2 FROM queries WHERE status = 'pending' AND id > ? ORDER BY id "
            "LIMIT ?",
            (query_id, context.render_ahead),
        ).fetchall()
        context.prerender(store, [int(i) for pair in [row, *upcoming] for i in pair])
    description = task_description(context.env_id)
    if store.query_kind(query_id) == "rate":
        classes = store.rating_classes()
        description = f"Rate this clip on its own, 1 (worst) to {classes} (best). The task: {description}"
        return {"id": query_id, "kind": "rate", "description": description,
                "clips": [f"/clips/{int(row[0])}.mp4"], "classes": classes}  # fmt: skip
    return {
        "id": query_id,
        "kind": "clips",
        "description": description,
        "clips": [f"/clips/{int(row[0])}.mp4", f"/clips/{int(row[1])}.mp4"],
    }
