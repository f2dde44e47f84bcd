"""The presenter's numbered flow steps, big and clear: one card per step of :class:`console.core.flow.FlowModel`.

A card's colour and badge say its state (waiting, under way, done, cache hit, stopped here); below the title
come the claims that matter at that step, and for a failed step the reason, in the error colour.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from console.core.flow import FlowModel, FlowStep, StepState

BADGES: dict[StepState, str] = {
    StepState.PENDING: "○ waiting",
    StepState.ACTIVE: "◌ under way",
    StepState.DONE: "✔ done",
    StepState.CACHE_HIT: "✔ cache hit",
    StepState.FAILED: "✖ stopped here",
}
HIGHLIGHT = ("audience", "audience before", "audience after", "ran as", "documents")


def _fact_lines(step: FlowStep) -> list[tuple[str, str]]:
    """The step's facts, with the audience before and after the exchange shown as one change."""
    facts = list(step.facts)
    before, after = step.fact("audience before"), step.fact("audience after")
    if before and after:
        facts = [(k, v) for k, v in facts if k not in ("audience before", "audience after")]
        facts.insert(0, ("audience", f"{before} → {after}"))
    return facts


def render_step(step: FlowStep, compact: bool = False) -> Text:
    """A step as rich text: the title line, why it stopped (if it did), then its facts (one a line, or side by
    side when ``compact``)."""
    text = Text()
    text.append(f" {step.number} ", style="bold reverse")
    text.append(f"  {step.title}", style="bold")
    text.append(f"   {BADGES[step.state]}", style=_badge_style(step.state))
    if step.duration_ms is not None and step.lit:
        text.append(f"  {step.duration_ms:.1f} ms", style="dim")
    if step.error:
        text.append("\n" if compact else "\n     ")
        text.append(f"why: {step.error}", style="bold red")
    facts = _fact_lines(step)
    width = max((len(label) for label, _ in facts), default=0) + 2
    for index, (label, value) in enumerate(facts):
        if compact:
            text.append("\n" if index == 0 else "   ")
            text.append(f"{label}: ", style="dim")
        else:
            text.append("\n     ")
            text.append(f"{label}:".ljust(width), style="dim")
        text.append(value, style="bold" if label in HIGHLIGHT else "")
    return text


def _badge_style(state: StepState) -> str:
    return {
        StepState.PENDING: "dim",
        StepState.ACTIVE: "bold yellow",
        StepState.DONE: "bold green",
        StepState.CACHE_HIT: "bold cyan",
        StepState.FAILED: "bold red",
    }[state]


class StepCard(Static):
    """One step; its CSS class names its state (``-done``, ``-failed``...), for the border colour."""

    def __init__(self, step: FlowStep, compact: bool = False) -> None:
        super().__init__(
            render_step(step, compact),
            id=f"flow-step-{step.number}",
            classes=f"flow-step -{step.state.value}",
        )
        self.step = step
        self.compact = compact

    def show(self, step: FlowStep, compact: bool | None = None) -> None:
        compact = self.compact if compact is None else compact
        if step == self.step and compact == self.compact:
            return
        self.remove_class(f"-{self.step.state.value}")
        self.add_class(f"-{step.state.value}")
        self.step, self.compact = step, compact
        self.update(render_step(step, compact))


class FlowSteps(Vertical):
    """The five steps (six with a step-up), top to bottom. Call :meth:`show` with the model whenever it changed."""

    DEFAULT_CLASSES = "flow-steps"

    def __init__(
        self, model: FlowModel | None = None, *, compact: bool = False, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.model = model or FlowModel()
        self.compact = compact
        self._shown: tuple[int, bool] = (-1, compact)

    def compose(self) -> ComposeResult:
        for step in self.model.steps:
            yield StepCard(step, self.compact)

    def show(self, model: FlowModel, *, compact: bool | None = None) -> None:
        """Redraw the cards from ``model`` (only when it changed); ``compact`` puts each step's facts on one line."""
        self.model = model
        self.compact = self.compact if compact is None else compact
        if (model.revision, self.compact) == self._shown:
            return
        self._shown = (model.revision, self.compact)
        cards = list(self.query(StepCard))
        for card in cards[len(model.steps) :]:  # the step-up step went with its turn
            card.remove()
        if len(model.steps) > len(cards):  # a step-up joined the flow
            self.mount_all(StepCard(step, self.compact) for step in model.steps[len(cards) :])
        for card, step in zip(cards, model.steps, strict=False):
            card.show(step, self.compact)

    @property
    def states(self) -> list[StepState]:
        return [card.step.state for card in self.query(StepCard)]
