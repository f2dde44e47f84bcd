"""Calling the core from the UI whether a method is plain, blocking or ``async``."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Await ``fn(*args)``: coroutines on the app's loop, plain functions in a thread (they may block: MSAL,
    sockets), so the UI never freezes while the core works."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        return await result
    return result


def reveal(value: Any) -> str:
    """The text of a possibly masked value (``SecretStr``), for the one place that must display it."""
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if callable(getter) else value)
