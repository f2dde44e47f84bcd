"""An asyncio loop on a daemon thread: the workspace runs agent turns here, whoever asks for them, so a slow hook or
a blocking call inside a turn never freezes the UI's own loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class LoopThread:
    """One event loop, run forever on its own daemon thread until ``stop()``."""

    def __init__(self, name: str = "workspace-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def on_loop(self) -> bool:
        """True when called from the loop's own thread (where waiting for the loop would deadlock)."""
        return threading.current_thread() is self._thread

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def run(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the loop (where runners live) and wait for its result."""

        async def call() -> T:
            return fn()

        return self.submit(call()).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel every task, wait up to ``timeout`` for them to finish, then stop and close the loop."""
        if not self.loop.is_running():
            return

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(drain(), self.loop).result(timeout)
        except TimeoutError:
            log.warning(
                "%s: tasks still running %.0f s after being cancelled; stopping the loop anyway",
                self._thread.name,
                timeout,
            )
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self.loop.is_running():
            self.loop.close()
