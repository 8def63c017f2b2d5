"""An access token in front of the page, for a server reachable from the network.

``villagesim app --expose`` wraps Solara's ASGI app (Starlette) in :class:`TokenGate`: every
HTTP request and every websocket (the page's live connection to its session) must carry the
token, either as ``?token=...`` in the address - the address printed once when the server
starts - or in the cookie that the first visit with the token sets. A visit with the token
in the address is redirected to the same address without it, so the token does not stay in
the browser's history or travel in a ``Referer``. Anything else gets ``401`` (HTTP) or is
closed before it is accepted (websocket, which the browser sees as ``403``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "villagesim_token"
QUERY = "token"
ENV_TOKEN = "VILLAGESIM_APP_TOKEN"
REFUSED = (
    b"villagesim: this page needs its access token. Open the address printed when the server started "
    b"(it ends in ?token=...), or ask the person who started it.\n"
)


def new_token() -> str:
    """A fresh random token (URL-safe, 32 bytes of randomness)."""
    return secrets.token_urlsafe(32)


class TokenGate:
    """ASGI middleware: pass a request on only when it carries ``token``.

    Args:
        app: the ASGI app behind the gate (Solara's Starlette app).
        token: the access token; compared in constant time.
        secure_cookie: mark the cookie ``Secure`` (for a server behind HTTPS).
    """

    def __init__(self, app: ASGIApp, token: str, *, secure_cookie: bool = False) -> None:
        if not token:
            raise ValueError("an empty access token")
        self.app = app
        self.token = token
        self.secure_cookie = secure_cookie

    def _ok(self, value: str | None) -> bool:
        return value is not None and secrets.compare_digest(value.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):  # lifespan: the server's start and stop
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = next((value for key, value in query if key == QUERY), None)
        if self._ok(self._cookie(scope)):
            await self.app(scope, receive, send)
        elif kind == "http" and self._ok(given):
            await self._redirect_with_cookie(scope, [(k, val) for k, val in query if k != QUERY], send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")],
                }
            )
            await send({"type": "http.response.body", "body": REFUSED})

    @staticmethod
    def _cookie(scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(value.decode("latin-1"))
                except Exception:  # a malformed cookie header is no token
                    continue
                if COOKIE in jar:
                    return jar[COOKIE].value
        return None

    async def _redirect_with_cookie(self, scope: Scope, rest: list[tuple[str, str]], send: Send) -> None:
        location = "/" + (scope.get("root_path", "") + scope.get("path", "/")).lstrip("/")  # never //host
        if rest:
            location += "?" + urlencode(rest)
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if self.secure_cookie else "")
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode("latin-1", "replace")),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
