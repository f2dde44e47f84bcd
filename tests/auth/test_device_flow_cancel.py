"""Regression: a task awaiting ``DeviceFlow.wait()`` is cancelled (the sign-in screen closes) while MSAL polls.

asyncio then cancels the flow's concurrent future; the poll thread used to call ``set_result`` /
``set_exception`` on it anyway and died with ``InvalidStateError`` (reported through ``threading.excepthook``).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from console.core.auth.errors import DeviceFlowCancelled
from mcp_server.localcloud.identity.device_page import complete_device_code
from tests.auth.conftest import AuthStack


async def test_cancelling_the_waiter_leaves_the_poll_thread_quiet(
    auth_stack: AuthStack, make_manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    escaped: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_value))
    manager = make_manager()
    flow = await manager.start_device_flow_async()
    waiting = asyncio.create_task(flow.wait())
    await asyncio.sleep(0.2)  # the poll thread is running MSAL's loop
    assert flow._thread is not None and flow._thread.is_alive()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # The person completes the page anyway: a poll that still ran would now get a token and try to set it.
    await asyncio.to_thread(
        complete_device_code,
        auth_stack.platform.verification_uri,
        flow.prompt.user_code.get_secret_value(),
        "alice",
        "approve",
        ca_cert=auth_stack.platform.ca_cert_path,
    )
    await asyncio.to_thread(flow.join, 15)
    assert not flow._thread.is_alive(), "the poll thread stops once nobody waits"
    assert escaped == [], f"an exception escaped the poll thread: {escaped!r}"
    assert flow.done() and flow.future.cancelled()
    flow.cancel()  # cancelling again after the waiter went away is harmless
    assert escaped == []


def test_cancel_before_polling_then_wait_raises_cancelled(auth_stack: AuthStack, make_manager) -> None:
    flow = make_manager().start_device_flow()
    flow.cancel()
    flow.cancel()  # twice: the second is a no-op, not an InvalidStateError
    with pytest.raises(DeviceFlowCancelled):
        flow.result(5)
