"""``spendscope dashboard [--port 8501] [--api URL]``: run the Streamlit app as a child process.

The app reads only the collector's query API; the URL and token reach it through the environment
(``SPENDSCOPE_API``, ``SPENDSCOPE_TOKEN``) so they never appear on a command line.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from spendscope.client import API_ENV, DEFAULT_API, TOKEN_ENV, add_api_option

__all__ = ["APP_PATH", "DEFAULT_PORT", "dashboard_argv", "dashboard_command", "register", "run_dashboard"]

DEFAULT_PORT = 8501
# The entry script; app.py holds the logic (see pages/_main.py for why it is not the entry).
APP_PATH = Path(__file__).with_name("pages") / "_main.py"


def dashboard_command(port: int, host: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        # No phoning home and no file watcher: this is a deployed app, not a dev session.
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]


def dashboard_argv(port: int = DEFAULT_PORT, api: str = DEFAULT_API) -> list[str]:
    """``spendscope dashboard`` as argv, for supervisors that start children by command line (the demo).

    The token is read from the inherited ``SPENDSCOPE_TOKEN``; SIGTERM stops the Streamlit child too.
    """
    return [sys.executable, "-m", "spendscope", "dashboard", "--port", str(port), "--api", api]


def run_dashboard(
    port: int = DEFAULT_PORT,
    api: str = DEFAULT_API,
    token: str | None = None,
    *,
    host: str = "127.0.0.1",
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start the dashboard and return the process (the caller owns it: terminate and wait)."""
    env = dict(popen.pop("env", None) or os.environ)
    env[API_ENV] = api
    if token:
        env[TOKEN_ENV] = token
    else:
        env.pop(TOKEN_ENV, None)
    return subprocess.Popen(dashboard_command(port, host), env=env, **popen)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        import streamlit  # noqa: F401
    except ImportError:
        print(
            "spendscope dashboard needs the server extra: pip install 'spendscope[server]'", file=sys.stderr
        )
        return 2
    token = os.environ.get(TOKEN_ENV) or None
    print(f"spendscope dashboard: http://{args.host}:{args.port}/ reading {args.api}", file=sys.stderr)
    proc = run_dashboard(args.port, args.api, token, host=args.host)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # one path for Ctrl-C and a supervisor's SIGTERM

    signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("dashboard", help="run the Streamlit dashboard over the collector's API")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    add_api_option(p)
    p.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1; see docs/dashboard.md on auth)"
    )
    p.set_defaults(func=_cmd_dashboard)
