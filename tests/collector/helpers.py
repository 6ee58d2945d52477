"""Helpers for collector tests: a real collector subprocess and hand-built OTLP requests."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["CollectorProcess", "free_port", "genai_attrs", "make_request", "open_calls", "span_dict"]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_LAKES: dict[Path, str] = {}


def _lake_env(db: Path) -> dict[str, str]:
    """With ``SPENDSCOPE_TEST_LAKE_PG`` set (``make test`` sets it for its run "with a lake"), every
    collector is a replica of a lake of its own: a fresh catalog database on that PostgreSQL and a
    data directory next to its file. Otherwise nothing."""
    socket_dir = os.environ.get("SPENDSCOPE_TEST_LAKE_PG")
    if not socket_dir:
        return {}
    from tests.lake.postgres import create_database

    # A collector restarted on the same file is the same replica of the same lake.
    name = _LAKES.get(db) or _LAKES.setdefault(db, create_database(socket_dir))
    return {
        "SPENDSCOPE_LAKE_CATALOG": f"postgres:dbname={name} host={socket_dir} user=postgres",
        "SPENDSCOPE_LAKE_DATA_PATH": str(db.parent / f"{db.stem}-lake"),
        "SPENDSCOPE_REPLICA": db.stem,
    }


def open_calls(db: Path) -> Any:
    """A read-only DuckDB connection to a stopped collector's file where ``calls`` is every stored
    call: the file's, and in a run with a lake also the lake's (each span once: a row a crash left
    in both places counts once, as the replica's next shipment settles it)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    name = _LAKES.get(db)
    if name is None:
        return con
    from spendscope.collector.lake.extensions import load_extensions

    load_extensions(con)
    socket_dir = os.environ["SPENDSCOPE_TEST_LAKE_PG"]
    con.execute(
        f"ATTACH 'ducklake:postgres:dbname={name} host={socket_dir} user=postgres' AS lake (READ_ONLY)"
    )
    local = '"' + db.stem + '"'
    con.execute(
        f"CREATE TEMP VIEW calls AS SELECT * FROM lake.calls UNION ALL SELECT * FROM {local}.main.calls l "
        "WHERE NOT EXISTS (SELECT 1 FROM lake.calls c "
        "WHERE c.trace_id = l.trace_id AND c.span_id = l.span_id)"
    )
    return con


class CollectorProcess:
    """``python -m spendscope collector`` on a free loopback port with its own DuckDB file."""

    def __init__(
        self,
        db: Path,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        config: Path | None = None,
    ) -> None:
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SPENDSCOPE_", "OTEL_"))}
        self.env.update(_lake_env(db))
        self.env.update(env or {})
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = db.with_suffix(".log")

    def start(self, timeout: float = 30.0) -> CollectorProcess:
        cmd = [
            sys.executable,
            "-m",
            "spendscope",
            "collector",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
        ]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=logf, stderr=logf, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"collector exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"collector did not become healthy: {self.log.read_text()[-3000:]}")

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=30.0)

    def post_otlp(
        self,
        body: bytes,
        *,
        content_type: str = "application/x-protobuf",
        gzip_body: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        h = {"Content-Type": content_type, **(headers or {})}
        if gzip_body:
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        return httpx.post(f"{self.url}/v1/traces", content=body, headers=h, timeout=60.0)


def _any(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list | tuple):
        a = AnyValue()
        a.array_value.values.extend(_any(x) for x in v)
        return a
    if isinstance(v, dict):
        a = AnyValue()
        a.kvlist_value.values.extend(KeyValue(key=k, value=_any(x)) for k, x in v.items())
        return a
    return AnyValue(string_value=str(v))


def genai_attrs(model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "http.response.status_code": 200,
    }
    attrs.update(extra)
    return {k: v for k, v in attrs.items() if v is not None}


def span_dict(
    attrs: Mapping[str, Any],
    *,
    trace_id: bytes | None = None,
    span_id: bytes | None = None,
    start_ns: int | None = None,
    duration_ns: int = 250_000_000,
    error: bool = False,
    name: str = "chat",
) -> dict[str, Any]:
    start = start_ns if start_ns is not None else time.time_ns()
    return {
        "trace_id": trace_id if trace_id is not None else os.urandom(16),
        "span_id": span_id if span_id is not None else os.urandom(8),
        "start_ns": start,
        "end_ns": start + duration_ns,
        "attrs": dict(attrs),
        "error": error,
        "name": name,
    }


def make_request(
    spans: Iterable[Mapping[str, Any]], service: str = "test-service"
) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=_any(service)))
    ss = rs.scope_spans.add()
    for s in spans:
        p = ss.spans.add()
        p.trace_id = s["trace_id"]
        p.span_id = s["span_id"]
        p.name = s.get("name", "chat")
        p.kind = 3
        p.start_time_unix_nano = s["start_ns"]
        p.end_time_unix_nano = s["end_ns"]
        if s.get("error"):
            p.status.code = 2
        p.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in s["attrs"].items())
    return req
