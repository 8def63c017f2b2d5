"""``villagesim app [SCENARIO] [--port N] [--host H]``: serve the browser page.

The page (:mod:`villagesim.app.page`) is served by Solara's own server (Starlette on uvicorn),
started in-process. Everything the browser loads comes from this server (``solara-assets``
of the same version as ``solara`` holds the front end), so the page works without internet.
Telemetry is switched off; no version check runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from villagesim.errors import VillagesimError

DEFAULT_PORT = 8765


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``app`` subcommand."""
    p = subparsers.add_parser("app", help="open the interactive browser page (levers, map, live charts)")
    p.add_argument("scenario", nargs="?", help="scenario TOML file to open first (default: the shipped baseline)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 for a network)"
    )
    p.set_defaults(func=_cmd_app)


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

    if args.scenario:
        from villagesim.config.loading import load_scenario

        load_scenario(args.scenario)  # a bad file fails here with the usual one-line error
        os.environ[ENV_SCENARIO] = os.path.abspath(args.scenario)
    _check_port(args.host, args.port)
    offline_environment()
    os.environ["SERVER_NAME"] = args.host
    os.environ["SERVER_PORT"] = str(args.port)
    import uvicorn  # imported after the environment is set: solara.server reads it on import

    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"villagesim page: http://{shown}:{args.port}/  (press Ctrl+C to stop)", flush=True)
    uvicorn.run("solara.server.starlette:app", host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from villagesim.cli.main import main

    sys.exit(main(["app", *sys.argv[1:]]))
