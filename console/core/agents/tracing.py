"""Local tracing: the SDK's traces and spans as JSON lines in ``data_dir()/traces/``, secrets masked.

``install_tracing(settings)`` replaces the SDK's default processor (which would POST to OpenAI whenever an
API key is around). Traces go to OpenAI only when the user opts in with ``OBO_CONSOLE_EXPORT_TRACES_TO_OPENAI``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

from agents import set_trace_processors, set_tracing_export_api_key
from agents.tracing import Span, Trace, TracingProcessor
from agents.tracing.processors import BatchTraceProcessor, default_exporter

from console.core.settings import Settings
from mcp_server.paths import data_dir
from mcp_server.redact import MASK
from mcp_server.redact import redact as mask_text
from mcp_server.redact import redact_value as mask

# mask_text / mask are the one masker (mcp_server.redact) under the names the agent modules use.
__all__ = [
    "MASK",
    "LocalJsonlProcessor",
    "active_processors",
    "ensure_tracing",
    "install_tracing",
    "mask",
    "mask_text",
]


class LocalJsonlProcessor(TracingProcessor):
    """Appends one JSON object per finished trace and span to ``<dir>/traces-YYYY-MM-DD.jsonl`` (0600)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory  # None: the data dir's traces/ at write time (follows OBO_CONSOLE_HOME)
        self._lock = threading.Lock()

    @property
    def directory(self) -> Path:
        return self._directory or data_dir() / "traces"

    @property
    def path(self) -> Path:
        return self.directory / f"traces-{dt.date.today():%Y-%m-%d}.jsonl"

    def _write(self, record: dict[str, Any] | None) -> None:
        if not record:
            return
        line = json.dumps(mask(record), default=str, ensure_ascii=False)
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def on_trace_start(self, trace: Trace) -> None:
        pass

    def on_trace_end(self, trace: Trace) -> None:
        self._write(trace.export())

    def on_span_start(self, span: Span[Any]) -> None:
        pass

    def on_span_end(self, span: Span[Any]) -> None:
        self._write(span.export())

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


_installed: LocalJsonlProcessor | None = None
_active: list[TracingProcessor] = []


def active_processors() -> list[TracingProcessor]:
    """What ``install_tracing`` installed last (the SDK keeps no public list)."""
    return list(_active)


def ensure_tracing(settings: Settings) -> LocalJsonlProcessor:
    """Install local tracing once per process (tracing processors are process-wide in the SDK)."""
    return _installed if _installed is not None else install_tracing(settings)


def install_tracing(settings: Settings, directory: Path | None = None) -> LocalJsonlProcessor:
    """Make the local processor the only one, plus OpenAI's exporter when the user opted in."""
    global _installed
    local = LocalJsonlProcessor(directory)
    _installed = local
    processors: list[TracingProcessor] = [local]
    if settings.export_traces_to_openai:
        if settings.openai_api_key is not None:
            set_tracing_export_api_key(settings.openai_api_key.get_secret_value())
        processors.append(BatchTraceProcessor(default_exporter()))
    set_trace_processors(processors)
    _active[:] = processors
    return local
