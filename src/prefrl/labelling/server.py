"""Serving the labelling app with uvicorn: in the foreground (``prefrl label``) or in a background
thread next to training (``prefrl rlhp --labeller human``)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from prefrl.preferences.queue import LabelQueue
from prefrl.preferences.store import PreferenceStore

OWNER = "owner"
"""The run owner's labeller (an admin), whose URL ``prefrl label`` and ``prefrl rlhp`` print."""
OWNER_TOKEN_FILE = "labelling-owner-token"
"""Beside the store (mode 600): the owner's token, so the printed URL survives restarts."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port) (0: a free port); ValueError with the fix when taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(
            f"cannot listen on {host}:{port} ({exc.strerror}): pass another --port (0: a free one)"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


APP_URL_KEY = "app_url"
"""Store meta key: where the app was last served, so that a restart keeps the URLs handed out."""


def saved_url(store_path: Path) -> str | None:
    """The URL the app over this store was last served at (None: never served)."""
    with PreferenceStore(store_path) as store:
        return store.meta(APP_URL_KEY)


def bind_stable(store_path: Path, host: str, port: int) -> socket.socket:
    """``bind``, but port 0 on a store served before tries that port first (the links given to
    people keep working); the URL bound is recorded in the store."""
    sock = None
    previous = saved_url(store_path)
    if port == 0 and previous is not None and previous.rsplit(":", 1)[-1].isdigit():
        with contextlib.suppress(ValueError):  # taken now: a free one
            sock = bind(host, int(previous.rsplit(":", 1)[-1]))
    sock = sock or bind(host, port)
    with PreferenceStore(store_path) as store:
        store.set_meta(APP_URL_KEY, base_url(sock))
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def owner_token(store_path: Path) -> str:
    """The owner's token: read from beside the store, or created (admin labeller ``owner``)."""
    token_file = Path(store_path).parent / OWNER_TOKEN_FILE
    with PreferenceStore(store_path) as store:
        queue = LabelQueue(store)
        if token_file.exists():
            token = token_file.read_text().strip()
            if queue.labeller_for_token(token) is not None:
                return token
        token = queue.add_labeller(OWNER, admin=True)
    token_file.touch(mode=0o600)
    token_file.write_text(token + "\n")
    return token


class BackgroundServer:
    """uvicorn in a daemon thread; ``start()`` returns once it accepts connections."""

    def __init__(self, app: object, sock: socket.socket) -> None:
        import uvicorn

        self.sock = sock
        self.url = base_url(sock)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))  # type: ignore[arg-type]
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True, name="prefrl-labelling"
        )

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the labelling app did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def start_background(
    store_path: Path, host: str, port: int, lease_seconds: float, render_ahead: int | None = 2
) -> tuple[BackgroundServer, str]:
    """Serve the app over ``store_path`` in a thread; returns the server and the owner's URL
    (``render_ahead``: see ``create_app``)."""
    from prefrl.labelling.app import create_app

    os.environ.setdefault("MUJOCO_GL", "egl")
    sock = bind_stable(store_path, host, port)
    try:
        server = BackgroundServer(create_app(store_path, None, lease_seconds, render_ahead), sock).start()
    except BaseException:
        sock.close()
        raise
    return server, f"{server.url}/?token={owner_token(store_path)}"


def serve_forever(
    store_path: Path, host: str, port: int, lease_seconds: float, announce: Callable[[str], None]
) -> None:
    """``prefrl label``: serve in the foreground until Ctrl-C; ``announce(url)`` once listening."""
    import uvicorn

    from prefrl.labelling.app import create_app

    os.environ.setdefault("MUJOCO_GL", "egl")
    sock = bind_stable(store_path, host, port)
    app = create_app(store_path, lease_seconds=lease_seconds)
    url = f"{base_url(sock)}/?token={owner_token(store_path)}"
    announce(url)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
    except KeyboardInterrupt:  # a second Ctrl-C during uvicorn's own shutdown
        pass
    finally:
        sock.close()
