"""Decode worker processes: OTLP decode, normalization, pricing and Arrow conversion off the GIL.

Python decoding is the collector's bottleneck (about 25 µs per span), and threads share one GIL,
so the receiver can hand request bodies to a small pool of spawned processes. A worker returns the
Arrow table as IPC bytes (cheap to move) plus what the writer needs; the main process keeps the
queue, the writer and the acknowledgement, so a worker crash loses nothing acknowledged.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing as mp
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from spendscope.collector.ingest import IngestBatch, prepare_batch
from spendscope.collector.pricer import Pricer
from spendscope.collector.warmup import warm_up
from spendscope.pricing.build import PriceSources, build_price_table

__all__ = ["DecodePool", "Prepared", "auto_workers", "make_pool", "prepare", "to_batch"]

_pricer: Pricer | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A picklable :class:`IngestBatch` without its future."""

    ipc: bytes | None
    rejected: list[tuple[str | None, ...]]
    ignored: int
    days: frozenset[int]
    lo: int
    hi: int


def auto_workers() -> int:
    """As many as the cores, at most 4; none on one core.

    The main process mostly waits (HTTP and DuckDB release the GIL), so on 2 cores two workers
    measured faster than one (16k against 12k spans/s in the ingest benchmark).
    """
    cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(4, cores)


def _init(sources: PriceSources) -> None:
    global _pricer
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent(os.getppid())

    _pricer = Pricer(build_price_table(sources))
    warm_up(_pricer)  # lazy imports now, and then frozen below with the rest
    # Decoding allocates millions of short-lived containers, which keeps the cyclic collector busy;
    # what exists now (modules, the price table) lives as long as the worker, so leave it out of
    # every collection, and let the young generation grow before it is scanned.
    gc.freeze()
    atexit.register(gc.unfreeze)  # let interpreter shutdown release it as usual
    gc.set_threshold(50_000, 20, 20)


def _watch_parent(parent: int) -> None:
    """Exit when the collector is gone (kill -9 included): the pool's pipes never report it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="spendscope-parent-watch", daemon=True).start()


def _warm() -> int:
    return os.getpid()


def make_pool(workers: int, sources: PriceSources) -> ProcessPoolExecutor:
    # spawn, not fork: the parent holds DuckDB and its threads, which must not be forked.
    pool = ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_init, initargs=(sources,)
    )
    for _ in range(workers):
        pool.submit(_warm)
    return pool


class DecodePool:
    """The decode processes; :meth:`restart` replaces them after one died (the pool is then broken)."""

    def __init__(self, workers: int, sources: PriceSources) -> None:
        self._workers = workers
        self._sources = sources
        self.executor = make_pool(workers, sources)

    def restart(self) -> None:
        old, self.executor = self.executor, make_pool(self._workers, self._sources)
        old.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def prepare(body: bytes, encoding: str, is_json: bool, limit: int) -> Prepared:
    """Runs in a worker: the same steps as the in-process path, Arrow table serialized as IPC."""
    assert _pricer is not None, "worker not initialized"
    batch = prepare_batch(body, encoding, is_json, limit, _pricer)
    ipc: bytes | None = None
    if batch.table is not None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.table.schema) as w:
            w.write_table(batch.table)
        ipc = sink.getvalue().to_pybytes()
    return Prepared(ipc, batch.rejected, batch.ignored, batch.days, batch.lo, batch.hi)


def to_batch(p: Prepared) -> IngestBatch:
    table = pa.ipc.open_stream(p.ipc).read_all() if p.ipc is not None else None
    return IngestBatch(table, p.rejected, p.ignored, days=p.days, lo=p.lo, hi=p.hi)
