"""Where every binding lives, for the help screen and the docs (each Binding has an id users can remap)."""

from __future__ import annotations

from collections.abc import Iterator

from textual.binding import Binding


def all_bindings() -> Iterator[tuple[str, Binding]]:
    from console.ui.app import OboConsoleApp
    from console.ui.screens.configs import ConfigsScreen
    from console.ui.screens.help import HelpScreen
    from console.ui.screens.main import MainScreen
    from console.ui.screens.sessions import SessionsScreen
    from console.ui.screens.sign_in import SignInScreen
    from console.ui.screens.trust import TrustScreen
    from console.ui.widgets.prompt_input import PromptInput

    for where, owner in (("anywhere", OboConsoleApp), ("main", MainScreen), ("prompt", PromptInput),
                         ("sign-in", SignInScreen), ("configs", ConfigsScreen), ("sessions", SessionsScreen),
                         ("trust", TrustScreen), ("help", HelpScreen)):
        for binding in owner.BINDINGS:
            if isinstance(binding, Binding):
                yield where, binding
