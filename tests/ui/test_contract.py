"""The UI's contract with the core (``console.ui.protocols``): the real Workspace and the UI's test double both
implement ``WorkspaceLike`` exactly — every member, each method a plain function (never a coroutine) with the
protocol's parameters, defaults and types — and their device-code sign-ins implement ``DeviceSignIn``. The protocol
names the core's own types, never ``Any``."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

import pytest

from console.core import mcp_trust
from console.core.browser_sign_in import BrowserSignInHandle
from console.core.clock import FixedClock
from console.core.settings import Settings
from console.core.workspace import Workspace
from console.core.workspace_views import DeviceFlowHandle
from console.ui import protocols
from console.ui.protocols import BrowserSignIn, DeviceSignIn, PresenterSource, WorkspaceLike
from tests.fixtures.workspace import FAST
from tests.presenter.host import ScenarioWorkspace
from tests.ui.fake_workspace import FakeBrowserSignIn, FakeFlow, FakeWorkspace

# Names some modules import only for type checkers.
TYPE_ONLY = {"TrustPrompt": mcp_trust.TrustPrompt}


def resolved(fn: Callable[..., object]) -> dict[str, Any]:
    module = sys.modules[fn.__module__]
    return typing.get_type_hints(fn, globalns={**TYPE_ONLY, **vars(module)})


def is_protocol(tp: object) -> bool:
    return isinstance(tp, type) and typing.Protocol in inspect.getmro(tp)


def conforms(value: object, tp: Any) -> bool:
    """``value`` is of type ``tp`` (a class, or a union of classes)."""
    if isinstance(tp, types.UnionType):
        return any(conforms(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    return isinstance(value, typing.get_origin(tp) or tp)


def declared(impl: type, name: str) -> Any | None:
    """The type ``impl`` declares for attribute ``name``: a property's return type, or a class annotation."""
    attr = inspect.getattr_static(impl, name, None)
    if isinstance(attr, property) and attr.fget is not None:
        return resolved(attr.fget)["return"]
    return typing.get_type_hints(impl, globalns={**TYPE_ONLY, **vars(sys.modules[impl.__module__])}).get(name)


def same_type(want: Any, got: Any, where: str) -> list[str]:
    if want == got:
        return []
    if is_protocol(want) and isinstance(got, type):
        return mismatches(want, got, None)
    return [f"{where}: {got} is not {want}"]


def mismatches(protocol: type, impl: type, instance: object | None) -> list[str]:
    """Every way ``impl`` (and ``instance``, for attributes set in ``__init__``) differs from ``protocol``."""
    found: list[str] = []
    for name, member in vars(protocol).items():
        if name.startswith("_"):
            continue
        where = f"{impl.__name__}.{name}"
        if isinstance(member, property):
            want = resolved(member.fget)["return"]
            got = declared(impl, name)
            if got is not None:
                found += same_type(want, got, where)
            elif instance is None or not conforms(getattr(instance, name, ...), want):
                found.append(f"{where}: missing, or not a {want}")
            continue
        method = inspect.getattr_static(impl, name, None)
        if not inspect.isfunction(method):
            found.append(f"{where}: not a method")
            continue
        if inspect.iscoroutinefunction(method):
            found.append(f"{where}: a coroutine function (the contract's methods are plain)")
        ours, theirs = inspect.signature(member), inspect.signature(method)
        shape = [(p.name, p.kind, p.default) for p in ours.parameters.values()]
        if [(p.name, p.kind, p.default) for p in theirs.parameters.values()] != shape:
            found.append(f"{where}{theirs} differs from the protocol's {ours}")
            continue
        want, got = resolved(member), resolved(method)
        for param in list(ours.parameters)[1:]:
            found += same_type(want[param], got.get(param), f"{where}({param})")
        found += same_type(want["return"], got.get("return"), f"{where} ->")
    return found


def test_the_real_workspace_implements_the_contract_exactly() -> None:
    workspace = Workspace(Settings(), clock=FixedClock(), link_timings=FAST)  # not started: no I/O
    try:
        assert mismatches(WorkspaceLike, Workspace, workspace) == []
        assert mismatches(DeviceSignIn, DeviceFlowHandle, None) == []
        assert mismatches(BrowserSignIn, BrowserSignInHandle, None) == []
        assert mismatches(PresenterSource, Workspace, workspace) == []
    finally:
        workspace.close()


def test_the_ui_test_double_implements_the_same_contract_exactly() -> None:
    fake = FakeWorkspace()
    assert mismatches(WorkspaceLike, FakeWorkspace, fake) == []
    assert mismatches(DeviceSignIn, FakeFlow, FakeFlow()) == []
    assert mismatches(BrowserSignIn, FakeBrowserSignIn, FakeBrowserSignIn()) == []
    assert mismatches(PresenterSource, ScenarioWorkspace, ScenarioWorkspace()) == []


def test_a_mismatch_is_found() -> None:
    """The check itself: an async method, a renamed parameter and a loose return type are each reported."""

    class Drifted(FakeWorkspace):
        async def stop_turn(self) -> bool:  # type: ignore[override]
            return True

        def switch_account(self, user: str) -> Any:  # type: ignore[override]
            return None

        def history(self) -> list[Any]:  # type: ignore[override]
            return []

    problems = mismatches(WorkspaceLike, Drifted, Drifted())
    assert problems == [
        "Drifted.switch_account(self, user: 'str') -> 'Any' differs from the protocol's "
        "(self, username: 'str') -> 'AccountInfo'",
        "Drifted.stop_turn: a coroutine function (the contract's methods are plain)",
        "Drifted.history ->: list[typing.Any] is not list[console.core.workspace_views.ChatEntry]",
    ]


@pytest.mark.parametrize("protocol", [WorkspaceLike, DeviceSignIn, BrowserSignIn, PresenterSource])
def test_the_protocol_names_real_types_never_any(protocol: type) -> None:
    def walk(tp: Any) -> list[Any]:
        if tp == protocols.Claims:  # JSON values: dict[str, object] on purpose
            return []
        return [tp, *(inner for arg in typing.get_args(tp) for inner in walk(arg))]

    loose = []
    for name, member in vars(protocol).items():
        fn = member.fget if isinstance(member, property) else member
        if name.startswith("_") or not callable(fn):
            continue
        for hint in resolved(fn).values():
            if any(t is Any or t is object for t in walk(hint)):
                loose.append(f"{name}: {hint}")
    assert loose == []
