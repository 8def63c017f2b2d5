"""``villagesim app [SCENARIO] [--port N] [--host H [--expose] [--token T]] [--idle-minutes M]``: serve the page.

The page (:mod:`villagesim.app.page`) is served by Solara's own server (Starlette on uvicorn),
started in-process. Everything the browser loads comes from this server (``solara-assets``
of the same version as ``solara`` holds the front end), so the page works without internet.
Telemetry is switched off; no version check runs.

By default the server listens on this computer only (127.0.0.1). An address others can
reach (``--host 0.0.0.0``, a network address or name) is refused unless ``--expose`` is
given; exposed, every request must carry an access token (:mod:`villagesim.app.auth`):
``--token``, ``$VILLAGESIM_APP_TOKEN``, or a random one printed once in the address.
A session whose browser has gone is freed after ``--idle-minutes`` (Solara's kernel cull
timeout, 24 hours by default in Solara).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from typing import Any

from villagesim.errors import VillagesimError

DEFAULT_PORT = 8765
DEFAULT_IDLE_MINUTES = 10.0
"""Minutes a session is kept after its browser tab closed or lost its connection."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``app`` subcommand."""
    p = subparsers.add_parser("app", help="open the interactive browser page (levers, map, live charts)")
    p.add_argument("scenario", nargs="?", help="scenario TOML file to open first (default: the shipped baseline)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 for a network, with --expose)",
    )
    p.add_argument(
        "--expose",
        action="store_true",
        help="allow an address others can reach (--host 0.0.0.0 etc.); every visitor then needs the access token",
    )
    p.add_argument(
        "--token",
        help="access token visitors must give (default: $VILLAGESIM_APP_TOKEN, else a random one printed once); "
        "giving one also requires it on this computer",
    )
    p.add_argument(
        "--idle-minutes",
        type=float,
        default=DEFAULT_IDLE_MINUTES,
        help=f"free a session this many minutes after its browser left (default {DEFAULT_IDLE_MINUTES:g})",
    )
    p.set_defaults(func=_cmd_app)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this computer only (127.0.0.0/8, ::1 or localhost)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def server_settings(idle_minutes: float, env: dict[str, str] | os._Environ = os.environ) -> None:
    """Settings of Solara's server that depend on the command line (before it is imported)."""
    if not idle_minutes > 0:
        raise VillagesimError(f"--idle-minutes: expected a positive number of minutes (got {idle_minutes:g})")
    env["SOLARA_KERNEL_CULL_TIMEOUT"] = f"{idle_minutes * 60:g}s"
    if "solara.server.settings" in sys.modules:  # already read: set it where Solara looks it up
        sys.modules["solara.server.settings"].kernel.cull_timeout = env["SOLARA_KERNEL_CULL_TIMEOUT"]


def page_url(host: str, port: int, token: str | None) -> str:
    """The address to open: the host the server binds (this machine's name for all interfaces)."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def _access_token(args: argparse.Namespace) -> str | None:
    """The token every request must carry, or None where the page is this computer's only."""
    from villagesim.app.auth import ENV_TOKEN, new_token

    given = args.token if args.token is not None else os.environ.get(ENV_TOKEN)
    if given is not None and not given.strip():
        raise VillagesimError(f"--token (or {ENV_TOKEN}) is empty; give a token or leave it out for a random one")
    if given is not None:
        return given.strip()
    return new_token() if args.expose else None


def wrapped_app(token: str | None) -> Any:
    """Solara's ASGI app, behind the token gate when a token is required."""
    from solara.server.starlette import app  # imported after the environment is set

    if token is None:
        return app
    from villagesim.app.auth import TokenGate

    return TokenGate(app, token)


def offline_environment(env: dict[str, str] | os._Environ = os.environ) -> None:
    """Settings that keep the Solara server from calling out (telemetry) and quiet in production."""
    env.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    env.setdefault("SOLARA_MODE", "production")
    env.setdefault("SOLARA_CHECK_HOOKS", "off")
    env["SOLARA_APP"] = "villagesim.app.page"


def _check_port(host: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise VillagesimError(f"--port: expected a port number from 1 to 65535 (got {port})")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise VillagesimError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; try another --port") from None


def _cmd_app(args: argparse.Namespace) -> int:
    from villagesim.app.page import ENV_SCENARIO

    loopback = is_loopback(args.host)
    if not loopback and not args.expose:
        raise VillagesimError(
            f"--host {args.host} lets others on the network open the page; add --expose to allow it "
            "(visitors then need an access token), or leave --host out for this computer only"
        )
    token = _access_token(args)
    if args.scenario:
        from villagesim.app.session import check_page_limits
        from villagesim.config.loading import load_scenario

        # a bad file, or one too big for the page, fails here with the usual one-line error
        check_page_limits(load_scenario(args.scenario).scenario, file=args.scenario)
        os.environ[ENV_SCENARIO] = os.path.abspath(args.scenario)
    _check_port(args.host, args.port)
    offline_environment()
    server_settings(args.idle_minutes)
    os.environ["SERVER_NAME"] = args.host
    os.environ["SERVER_PORT"] = str(args.port)
    import uvicorn  # imported after the environment is set: solara.server reads it on import

    app = wrapped_app(token)
    if not loopback:
        print(
            f"villagesim: warning: the page is reachable by others on the network ({args.host}:{args.port}); "
            "only those with the address below, token included, can open it",
            file=sys.stderr,
            flush=True,
        )
    print(f"villagesim page: {page_url(args.host, args.port, token)}  (press Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from villagesim.cli.main import main

    sys.exit(main(["app", *sys.argv[1:]]))
