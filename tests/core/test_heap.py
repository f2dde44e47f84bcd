"""The heap settler: freezes the long-lived heap at its two moments (and only when enabled), and collects between
turns, so that the collector's full passes visit only what was made since."""

from __future__ import annotations

import gc
import weakref

import pytest

from console.core.heap import HeapSettler


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


pytestmark = pytest.mark.usefixtures("unfrozen_heap")


def test_disabled_freezes_nothing() -> None:
    settler = HeapSettler(enabled=False)
    settler.core_started()
    settler.between_turns()
    settler.between_turns()
    assert gc.get_freeze_count() == 0 and settler.frozen_at == []


def _in_collected_generations(obj: object) -> bool:
    """Whether the collector still looks at ``obj`` (``gc.get_objects`` leaves out the frozen ones)."""
    return any(o is obj for o in gc.get_objects())


def test_freezes_at_start_then_after_the_first_turn_and_collects_between_turns() -> None:
    settler = HeapSettler(enabled=True)
    settler.core_started()
    frozen = gc.get_freeze_count()
    assert frozen > 1000 and settler.frozen_at == [
        "core started"
    ]  # modules, classes, functions: out of sight
    live = Node()
    garbage = weakref.ref(Node())  # unreachable, in a cycle: waits for a full collection
    assert garbage() is not None
    settler.between_turns()  # the first: collect what the turn left, then freeze the rest
    assert garbage() is None  # collected, not frozen for good
    # `live` was made after the first freeze and is frozen now: out of the collected generations. (Counting the
    # frozen objects is no proof: frozen objects other threads free leave the count, so it may even drop.)
    assert settler.frozen_at == ["core started", "first turn"] and not _in_collected_generations(live)
    assert gc.is_tracked(live) and live.me is live
    frozen = gc.get_freeze_count()
    later = weakref.ref(Node())
    settler.between_turns()  # afterwards: a collection only, nothing more frozen
    assert later() is None and gc.get_freeze_count() <= frozen
    settler.core_started()  # each moment freezes once
    assert settler.frozen_at == ["core started", "first turn"] and gc.get_freeze_count() <= frozen
