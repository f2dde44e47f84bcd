"""The panes' tables, tabs and logs are typed widget classes loaded after the first frame, not at import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFERRED = ["textual.widgets._data_table", "textual.widgets._tabbed_content", "textual.widgets._log"]


def test_importing_the_app_loads_no_table_tabs_or_log() -> None:
    probe = f"import sys, console.ui.app; print([m for m in {DEFERRED!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_lazy_widget_returns_the_real_classes() -> None:
    from textual.widgets import DataTable, Input, Log, TabbedContent

    from console.ui.widgets.staged_pane import lazy_widget

    assert lazy_widget("DataTable") is DataTable
    assert lazy_widget("TabbedContent") is TabbedContent
    assert lazy_widget("Input") is Input
    assert lazy_widget("Log") is Log
