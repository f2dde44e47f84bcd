"""Evaluations in worker processes with a hard time limit: CPU-heavy work never runs on a server's interpreter.

Every local service (identity platform, search service, MCP server, calculator) runs in one process, so they share
one GIL: a long computation on any thread — a big-integer power is a single C call that never releases the GIL —
freezes all of them. A thread pool cannot help; a process can, and a process can be killed. A worker that does not
answer within the time limit is killed (SIGKILL) and replaced by a fresh one on the next request.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio

from mcp_server import arithmetic
from mcp_server.arithmetic import CalculationRefused, Limits, Number

TIME_LIMIT = 2.0  # seconds one evaluation may take in its worker
START_LIMIT = 15.0  # seconds a new worker may take to start (not part of any request's time limit)
WAIT_LIMIT = 5.0  # seconds a request may wait for a free worker before it is refused as busy
POOL_SIZE = 2


class WorkerTimeout(Exception):
    pass


class _Worker:
    """One child process speaking arithmetic.py's line protocol. Its replies are read by a thread, so waiting for
    one is a queue ``get`` with a timeout on every OS (pipes cannot be polled on Windows)."""

    def __init__(self) -> None:
        # -I -S: no environment variables, user or site packages; env={}: none of the server's secrets.
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(Path(arithmetic.__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            bufsize=0,
        )
        self.replies: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"calc-worker-{self.process.pid}", daemon=True).start()
        try:
            greeting = self.replies.get(timeout=START_LIMIT)
        except queue.Empty:
            greeting = None
        if greeting is None or not json.loads(greeting).get("ready"):
            self.kill()
            raise RuntimeError(f"a calculator worker process did not start within {START_LIMIT:g} s")

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in self.process.stdout:
                self.replies.put(line)
        self.replies.put(None)  # EOF: the worker is gone

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            raise EOFError("the worker process is gone") from exc
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise WorkerTimeout from None
        if line is None:
            raise EOFError("the worker process ended without an answer")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class EvaluatorPool:
    """Up to ``size`` worker processes, started on first use and reused; ``evaluate`` blocks (see ``evaluate_async``).

    Raises ``CalculationRefused`` (code ``time_limit``, ``busy``, ``memory_limit`` or an evaluator limit) or
    ``ValueError`` (not arithmetic).
    """

    def __init__(
        self,
        *,
        size: int = POOL_SIZE,
        time_limit: float = TIME_LIMIT,
        wait_limit: float = WAIT_LIMIT,
        limits: Limits | None = None,
    ) -> None:
        self.size = size
        self.time_limit = time_limit
        self.wait_limit = wait_limit
        self.limits = limits or Limits()
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.killed: list[int] = []  # pids of workers killed at the time limit (observable by tests and logs)

    def evaluate(self, expression: str) -> Number:
        if not self._slots.acquire(timeout=self.wait_limit):
            raise CalculationRefused(
                "busy",
                f"every calculator worker stayed busy for {self.wait_limit:g} s; try again in a moment.",
                {"workers": self.size, "wait_seconds": self.wait_limit},
            )
        try:
            return self._on_worker(expression)
        finally:
            self._slots.release()

    async def evaluate_async(self, expression: str) -> Number:
        """``evaluate`` from an event loop: a thread only waits on the worker's pipe, so it holds no GIL."""
        return await anyio.to_thread.run_sync(self.evaluate, expression)

    def _on_worker(self, expression: str) -> Number:
        worker = self._take()
        request = {"expression": expression, "limits": asdict(self.limits)}
        try:
            reply = worker.ask(request, self.time_limit)
        except WorkerTimeout:
            self._discard(worker, timed_out=True)
            raise CalculationRefused(
                "time_limit",
                f"the calculation took longer than {self.time_limit:g} s and was stopped. "
                "Use smaller numbers or split it into steps.",
                {"seconds": self.time_limit},
            ) from None
        except (
            EOFError,
            ValueError,
        ) as exc:  # it died mid-calculation (its memory limit), or a garbled reply
            self._discard(worker)
            raise CalculationRefused(
                "memory_limit",
                "the calculation stopped its worker process (most likely out of memory); use smaller numbers.",
                {"memory_bytes": arithmetic.WORKER_MEMORY_BYTES},
            ) from exc
        self._give_back(worker)
        if reply.get("ok"):
            value: Number = reply["value"]
            return value
        if reply.get("code"):
            raise CalculationRefused(str(reply["code"]), str(reply["error"]), reply.get("limit") or {})
        raise ValueError(str(reply.get("error") or "the calculation failed"))

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the calculator is shutting down")
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                self._all.discard(worker)  # ended while idle (killed from outside): start another
        worker = _Worker()
        with self._lock:
            self._all.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        self._discard(worker)

    def _discard(self, worker: _Worker, *, timed_out: bool = False) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
            if timed_out:
                self.killed.append(worker.pid)

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._all)

    def close(self) -> None:
        """Kill every worker (idle or busy); later requests are refused."""
        with self._lock:
            self._closed = True
            workers, self._all, self._idle = list(self._all), set(), []
        for worker in workers:
            worker.kill()
