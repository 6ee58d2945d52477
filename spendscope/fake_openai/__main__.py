"""``python -m spendscope.fake_openai [--host 127.0.0.1] [--port 8000]``: serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from spendscope.fake_openai.server import FakeOpenAI

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spendscope.fake_openai", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (0 picks a free one; default 8000)")
    args = parser.parse_args(argv)
    try:
        fake = FakeOpenAI(host=args.host, port=args.port)
        fake.start()
    except (ValueError, OSError) as exc:
        print(f"fake_openai: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(f"base_url={fake.base_url}")
    print(f"root_url={fake.root_url}")
    print(f"api_key={fake.api_key}")
    print(f"admin_key={fake.admin_key}")
    print(f"azure_api_key={fake.azure_api_key}")
    sys.stdout.flush()
    try:
        while not done.wait(0.5):  # a timed wait so signals are handled promptly
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
