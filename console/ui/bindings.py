"""Every binding, declared here as data: the app, the screens and the prompt take their ``BINDINGS`` from this
module, and the help screen lists them from it, so listing them imports none of their owners. Each binding has an
id users can remap in their keymap file."""

from __future__ import annotations

from collections.abc import Iterator

from textual.binding import Binding, BindingType

# Anywhere in the console (OboConsoleApp).
APP: list[BindingType] = [
    Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    Binding("f1", "help", "Help", id="app.help"),
    Binding("f2", "sign_in", "Sign in", id="account.sign_in"),
    Binding("f3", "switch_account", "Switch account", id="account.switch", show=False),
    Binding("f4", "sign_out", "Sign out", id="account.sign_out", show=False),
    Binding("f5", "configs", "Configs", id="configs.show"),
    Binding("f7", "presenter", "Presenter", id="view.presenter", priority=True),
    Binding("ctrl+t", "change_theme", "Theme", id="app.theme", show=False),
    Binding("f9", "scenarios", "Scenarios", id="scenario.show", show=False),  # palette + help list it
]

MAIN: list[BindingType] = [
    Binding("escape", "stop_turn", "Stop", id="chat.stop"),
    Binding("ctrl+n", "reset_conversation", "New chat", id="chat.reset"),
    # priority: the prompt (a TextArea) would take ctrl+e as "end of line" (the end key still does that).
    Binding("ctrl+e", "export", "Export", id="session.export", priority=True),
    Binding("f8", "sessions", "Sessions", id="session.list", show=False),  # palette + help list it
    Binding("ctrl+g", "load_earlier", "Earlier msgs", id="chat.load_earlier", show=False),
    Binding("ctrl+end", "jump_to_latest", "Latest msgs", id="chat.latest", show=False),
    Binding("ctrl+b", "back_to_main", "Main agent", id="agent.back"),
    Binding("ctrl+f", "filter_events", "Filter events", id="events.filter", show=False),
    Binding("ctrl+l", "server_log", "Server log", id="events.server_log", show=False),
    Binding("f6", "next_pane", "Next pane", id="pane.next", priority=True, show=False),
    Binding("shift+f6", "previous_pane", "Previous pane", id="pane.previous", show=False, priority=True),
]

PROMPT: list[BindingType] = [
    Binding("enter", "submit", "Send", id="chat.send", priority=True),
    Binding("ctrl+j,shift+enter", "newline", "Newline", id="chat.newline", priority=True, show=False),
    Binding("up", "history_previous", "History", id="chat.history_previous", priority=True, show=False),
    Binding("down", "history_next", "History", id="chat.history_next", priority=True, show=False),
]

SIGN_IN: list[BindingType] = [
    Binding("escape", "cancel", "Cancel", id="signin.cancel"),
    Binding("c", "copy_code", "Copy code", id="signin.copy_code"),
    Binding("u", "copy_url", "Copy URL", id="signin.copy_url"),
    Binding("o", "open_url", "Open URL", id="signin.open_url"),  # in the web console: a new browser tab
    Binding("r", "retry", "New code", id="signin.retry"),
    Binding("b", "browser", "Browser sign-in", id="signin.browser"),
    Binding("d", "device_code", "Device code", id="signin.device_code"),
    Binding("1", "sign_in_as(0)", "As user 1", id="signin.as_1", show=False),
    Binding("2", "sign_in_as(1)", "As user 2", id="signin.as_2", show=False),
    Binding("3", "sign_in_as(2)", "As user 3", id="signin.as_3", show=False),
    Binding("4", "sign_in_as(3)", "As user 4", id="signin.as_4", show=False),
    Binding("5", "sign_in_as(4)", "As user 5", id="signin.as_5", show=False),
]

CONFIGS: list[BindingType] = [
    Binding("escape", "close", "Back", id="configs.close"),
    Binding("enter", "use", "Use as main agent", id="configs.use", priority=True),
    Binding("f5", "reload", "Refresh", id="configs.refresh"),
]

SESSIONS: list[BindingType] = [
    Binding("escape", "close", "Back", id="sessions.close"),
    Binding("enter", "resume", "Resume", id="sessions.resume", priority=True),
]

TRUST: list[BindingType] = [
    Binding("y", "trust", "Trust and connect", id="trust.accept"),
    Binding("n,escape", "refuse", "Refuse", id="trust.refuse"),
]

SCENARIOS: list[BindingType] = [
    Binding("escape", "close", "Back", id="scenarios.close"),
    Binding("enter", "apply", "Apply", id="scenarios.apply", priority=True),
    Binding("r", "reset", "Reset", id="scenarios.reset"),
]

HELP: list[BindingType] = [Binding("escape,f1,q", "close", "Close", id="help.close")]

# Where each list applies, in the order the help screen shows them.
PLACES: tuple[tuple[str, list[BindingType]], ...] = (
    ("anywhere", APP),
    ("main", MAIN),
    ("prompt", PROMPT),
    ("sign-in", SIGN_IN),
    ("configs", CONFIGS),
    ("sessions", SESSIONS),
    ("scenarios", SCENARIOS),
    ("trust", TRUST),
    ("help", HELP),
)


def all_bindings() -> Iterator[tuple[str, Binding]]:
    for where, bindings in PLACES:
        for binding in bindings:
            if isinstance(binding, Binding):
                yield where, binding
