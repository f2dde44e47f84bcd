"""The presenter's flow: sign-in → token to the MCP server → validation → OBO exchange → trimmed search.

A pure model (no UI, no I/O): feed it the account's events with :meth:`FlowModel.apply` and read its five
:class:`FlowStep` s. Each step lights up as the event that proves it arrives, with the claims that matter at that
step; a failure marks the step where the flow stopped, says why, and leaves every later step unlit.

Which event lights which step:

1. sign-in — ``AccountChanged`` to an account (plus the user token's claims from :meth:`FlowModel.signed_in`);
2. token to the MCP server — ``ToolStarted`` for an MCP tool (the bearer token travels with the call);
3. validation — ``ServerStep`` ``validate`` (or the server's 401/403, reported as an error notice or tool error);
4. OBO exchange — ``ServerStep`` ``obo_exchange`` (``cache_hit`` when the server reused a cached OBO token);
5. trimmed search — ``ServerStep`` ``search`` and ``SearchResults`` (as whom it ran, how many documents).

A Conditional Access claims challenge adds a sixth step, the step-up (``StepUp`` events: which policy asked for
what, the sign-in's ``amr``/``acrs`` before and after); it stays while the turn runs again (``TurnStarted`` with
``retry_of``) and goes with the next question.

Where a failure stopped the flow comes from the fields of the event that reports it (``step``, ``code``,
``http_status``: see ``console.core.events.FailedStep`` and ``ErrorCode``), never from its message, which is
only shown ("server said"). A new turn starts the tool-call steps (2–5) over; a different account starts
everything over.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from console.core.describe import amr_text
from console.core.events import (
    AccountChanged,
    Event,
    FailedStep,
    Notice,
    SearchResults,
    ServerStep,
    StepUp,
    StepUpStatus,
    ToolEnded,
    ToolStarted,
    TurnStarted,
)
from mcp_server import aadsts
from mcp_server.redact import redact

SEARCH_AUDIENCE = "https://search.azure.com"
SEARCH_TOOLS = frozenset({"get_documents"})

STEP_UP = ("step_up", "Step-up (Conditional Access)")

# Which of the five steps a failed server step (``FailedStep``, on the event that reports it) stops the flow at.
_STEP_OF: dict[str, str] = {
    FailedStep.CONNECT: "token",
    FailedStep.VALIDATE: "validation",
    FailedStep.OBO_EXCHANGE: "obo",
    FailedStep.SEARCH: "search",
}


def _refusal(http_status: int | None) -> str:
    """Why validation failed, from the status the server answered: 401 unless it was a 403."""
    if http_status == 403:
        return "HTTP 403: the user's token lacks the scope the MCP server requires"
    return "HTTP 401: the MCP server rejected the user's token"


# The fix for a failed search, by what the server said (the words of docs/server.md and the search service).
_SEARCH_FIXES: tuple[tuple[str, str], ...] = (
    ("no document-level access", "Recreate the index with its permission fields: `obo-console provision`."),
    ("HTTP 403", "Put the search service's current admin key in OBO_CONSOLE_SEARCH_API_KEY (portal > Keys)."),
    ("HTTP 401", "Sync the clocks of this machine and the identity platform's host; then sign in again."),
    ("unreachable", "Start the search service (portal > the search service > Overview: Running)."),
)
_CLAIMS_CHECKED = "issuer, audience, expiry, scope"  # on every request; the signature unless reused
# The validate step's "signature" detail: verified for this request, or on an earlier request with the same token.
_SIGNATURE = {
    "verified": "verified on this request",
    "cached": "verified on an earlier request with this token (reused while its key is current, a minute at most)",
}
_VALIDATION_FIX = "Sign in again (F2): the token's key, issuer or audience is not what the server trusts."


def search_fix(message: str) -> str | None:
    return next((fix for words, fix in _SEARCH_FIXES if words in message), None)


@dataclass(frozen=True)
class _Failure:
    """What an event says about a failure, as the flow reads it: from the event's fields, never its wording."""

    message: str
    step: str | None = None
    code: str | None = None
    http_status: int | None = None


class StepState(StrEnum):
    PENDING = "pending"  # not reached (yet)
    ACTIVE = "active"  # under way
    DONE = "done"
    CACHE_HIT = "cache_hit"  # the OBO step, answered from the server's cache
    FAILED = "failed"


@dataclass(frozen=True)
class FlowStep:
    number: int
    key: str
    title: str
    state: StepState = StepState.PENDING
    facts: tuple[tuple[str, str], ...] = ()  # (label, value): the claims that matter at this step
    error: str | None = None  # why the flow stopped here
    duration_ms: float | None = None

    @property
    def lit(self) -> bool:
        return self.state in (StepState.DONE, StepState.CACHE_HIT)

    def fact(self, label: str) -> str | None:
        return next((value for name, value in self.facts if name == label), None)


STEP_TITLES: tuple[tuple[str, str], ...] = (
    ("sign_in", "Sign-in"),
    ("token", "Token to the MCP server"),
    ("validation", "Validation"),
    ("obo", "OBO exchange"),
    ("search", "Trimmed search"),
)


def _fresh_steps() -> list[FlowStep]:
    return [FlowStep(number, key, title) for number, (key, title) in enumerate(STEP_TITLES, start=1)]


def _short_list(values: Any, limit: int = 3) -> str:
    items = (
        [str(v) for v in values] if isinstance(values, list | tuple) else ([str(values)] if values else [])
    )
    if not items:
        return "(none)"
    more = f" +{len(items) - limit}" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _audience(claims: dict[str, Any] | None) -> str | None:
    if not claims or "aud" not in claims:
        return None
    aud = claims["aud"]
    return _short_list(aud) if isinstance(aud, list) else str(aud)


def explain_aadsts(code: str | None, fallback: str | None = None) -> str:
    """``AADSTS7000215: the MCP server's client secret is wrong ...`` from the AADSTS table (docs/aadsts.md), or
    the server's own words for a code the table does not know."""
    if not code:
        return fallback or "the exchange failed"
    entry = aadsts.lookup(code)
    meaning = entry.meaning if entry else fallback or "the identity platform refused the exchange"
    return f"{code}: {meaning}"


def aadsts_fix(code: str | None) -> str | None:
    """The table's fix for ``code`` (portal words), shown next to the failed step."""
    entry = aadsts.lookup(code)
    return entry.fix if entry else None


@dataclass
class FlowModel:
    """The presenter's five steps for one account. Mutable, fed in event order; read :attr:`steps`."""

    account: str | None = None
    steps: list[FlowStep] = field(default_factory=_fresh_steps)
    call_id: str | None = None  # the MCP tool call the steps 2–5 follow
    documents: int | None = None
    revision: int = 0  # bumped on every change (views redraw only when it moves)

    # ---- reading
    def step(self, key: str) -> FlowStep:
        return next(s for s in self.steps if s.key == key)

    @property
    def stopped_at(self) -> FlowStep | None:
        """The step where the flow failed, if it did."""
        return next((s for s in self.steps if s.state is StepState.FAILED), None)

    @property
    def complete(self) -> bool:
        return all(s.lit for s in self.steps)

    # ---- feeding
    def _set(self, key: str, **changes: Any) -> None:
        index = next(i for i, s in enumerate(self.steps) if s.key == key)
        facts = changes.pop("add_facts", None)
        step = replace(self.steps[index], **changes)
        if facts:
            merged = dict(step.facts)
            merged.update({k: v for k, v in facts if v is not None})
            step = replace(step, facts=tuple(merged.items()))
        self.steps[index] = step
        self.revision += 1

    def _reset_from(self, first: int, *, keep_step_up: bool = False) -> None:
        self.steps = [
            s
            if s.number < first or (keep_step_up and s.key == STEP_UP[0])
            else FlowStep(s.number, s.key, s.title)
            for s in self.steps
            if s.key != STEP_UP[0] or keep_step_up
        ]
        self.call_id = None
        self.documents = None
        self.revision += 1
        audience = self.step("sign_in").fact("audience")
        if first > 1 and audience:  # what the token carries to the server is known from the sign-in
            self._set("token", add_facts=(("audience", audience),))

    def signed_in(self, account: str, claims: dict[str, Any] | None = None, name: str | None = None) -> None:
        """Step 1 from the sign-in, with the user token's claims (never the token)."""
        if account != self.account:
            self.account = account
            self._reset_from(1)
        claims = claims or {}
        self._set(
            "sign_in",
            state=StepState.DONE,
            error=None,
            add_facts=(
                ("user", name or claims.get("name") or self.step("sign_in").fact("user") or account),
                ("account", account),
                ("audience", _audience(claims)),
                ("scopes", claims.get("scp")),
            ),
        )
        # The token's audience is the API's client id: what step 2 carries to the server.
        if _audience(claims):
            self._set("token", add_facts=(("audience", _audience(claims)),))

    def signed_out(self) -> None:
        self.account = None
        self._reset_from(1)

    def apply(self, event: Event) -> bool:
        """Update the steps from ``event``; True when anything changed."""
        before = self.revision
        match event:
            case AccountChanged():
                if event.account is None:
                    self.signed_out()
                else:
                    self.signed_in(event.account)
            case TurnStarted():
                self._reset_from(2, keep_step_up=event.retry_of is not None)
            case StepUp():
                self._on_step_up(event)
            case ToolStarted() if self._is_search_call(event.tool, event.tool_type):
                self._reset_from(2, keep_step_up=True)  # a new question has dropped it already
                self.call_id = event.call_id or None
                self._set("token", state=StepState.DONE, error=None, add_facts=(("tool", event.tool),))
                self._set("validation", state=StepState.ACTIVE)
            case ServerStep() if self._follows(event.call_id):
                self._on_server_step(event)
            case SearchResults() if self._follows(event.call_id):
                self._on_results(event)
            case ToolEnded() if event.error and self._follows(event.call_id) and self.call_id is not None:
                self._on_failure(_Failure(event.error, event.step, event.code, event.http_status))
            case Notice() if event.level == "error" and event.step is not None:
                # The call path failed before any tool ran (refused on connect, or the server not reachable).
                self._on_failure(_Failure(event.message, event.step, event.code, event.http_status))
            case _:
                pass
        return self.revision != before

    def replay(self, events: list[Event]) -> FlowModel:
        for event in events:
            self.apply(event)
        return self

    # ---- the steps' own events
    @staticmethod
    def _is_search_call(tool: str, tool_type: str) -> bool:
        return tool_type == "mcp" or tool in SEARCH_TOOLS

    def _follows(self, call_id: str) -> bool:
        return self.call_id is None or not call_id or call_id == self.call_id

    def _fail(self, key: str, reason: str) -> None:
        self._set(key, state=StepState.FAILED, error=redact(reason))
        failed = self.step(key).number
        # Nothing after a failure lights up, and nothing after it is "under way" either.
        for step in self.steps:
            if step.number > failed and step.state is not StepState.PENDING and step.key != STEP_UP[0]:
                self._set(step.key, state=StepState.PENDING)

    def _on_server_step(self, event: ServerStep) -> None:
        detail = event.detail or {}
        if self.step("token").state is StepState.PENDING:
            self._set("token", state=StepState.DONE)  # the server saw the call: the token got there
        if event.step == "validate":
            if event.status in ("error", "failed"):
                self._fail("validation", str(detail.get("error") or "the token was rejected"))
                return
            self._set(
                "validation",
                state=StepState.DONE,
                duration_ms=event.duration_ms,
                add_facts=(
                    (
                        "checked",
                        _CLAIMS_CHECKED
                        if detail.get("signature") == "cached"
                        else f"signature, {_CLAIMS_CHECKED}",
                    ),
                    ("signature", _SIGNATURE.get(str(detail.get("signature")))),
                    ("oid", detail.get("oid")),
                ),
            )
            self._set("obo", state=StepState.ACTIVE)
        elif event.step == "obo_exchange":
            self._lit_before("obo")
            if event.status in ("error", "failed"):
                code = str(detail.get("aadsts") or "") or None
                self._fail("obo", explain_aadsts(code, str(detail.get("error") or "") or None))
                self._set("obo", add_facts=(("fix", aadsts_fix(code)),))
                return
            hit = event.status == "cache_hit" or detail.get("cache") in ("hit", "joined")
            self._set(
                "obo",
                state=StepState.CACHE_HIT if hit else StepState.DONE,
                duration_ms=event.duration_ms,
                add_facts=(
                    ("exchange", "cache hit (no call to the identity platform)" if hit else "exchanged"),
                ),
            )
            self._set("search", state=StepState.ACTIVE)
        elif event.step == "search":
            self._lit_before("search")
            if event.status in ("error", "failed"):
                said = str(detail.get("error") or "the search failed")
                self._fail("search", said)
                self._set("search", add_facts=(("fix", search_fix(said)),))
                return
            self._set(
                "search",
                state=StepState.DONE,
                duration_ms=event.duration_ms,
                add_facts=(("documents", _count(detail.get("hits"))),),
            )

    def _on_step_up(self, event: StepUp) -> None:
        """The sixth step: the claims challenge and the sign-in that answers it."""
        if not any(s.key == STEP_UP[0] for s in self.steps):
            self.steps.append(FlowStep(len(STEP_TITLES) + 1, *STEP_UP))
        before = amr_text(event.amr_before, event.acrs_before)
        facts = (
            ("policy", event.policy or "(not named)"),
            ("resource", event.resource),
            ("requires", event.required),
            ("sign-in before", before),
        )
        if event.status is StepUpStatus.DONE:
            after = amr_text(event.amr_after, event.acrs_after)
            self._set(
                STEP_UP[0], state=StepState.DONE, error=None, add_facts=(*facts, ("sign-in after", after))
            )
            if event.how:
                self._set(STEP_UP[0], add_facts=(("how", event.how),))
        elif event.status is StepUpStatus.FAILED:
            self._set(
                STEP_UP[0],
                state=StepState.FAILED,
                error=redact(event.hint or "not satisfied"),
                add_facts=facts,
            )
        else:  # signing in: in the browser, the person's part and the page (no token in it)
            page = (("how", event.how or None), ("sign-in page", event.url or None))
            self._set(STEP_UP[0], state=StepState.ACTIVE, add_facts=(*facts, *page))

    def _lit_before(self, key: str) -> None:
        """Steps before ``key`` that are still under way are done (their own events may come later, via _meta)."""
        number = self.step(key).number
        for step in self.steps:
            if 1 < step.number < number and step.state in (StepState.PENDING, StepState.ACTIVE):
                self._set(step.key, state=StepState.DONE)

    def _on_results(self, event: SearchResults) -> None:
        ran_as = event.ran_as or {}
        who = ran_as.get("name") or ran_as.get("preferred_username") or ran_as.get("oid")
        if event.obo_claims:
            self._set(
                "obo",
                add_facts=(
                    ("audience before", self.step("token").fact("audience")),
                    ("audience after", _audience(event.obo_claims)),
                ),
            )
        if event.aadsts or event.error:
            # What the result proves got done: claims of an OBO token mean the exchange worked; "ran as" means
            # the token was validated (the _meta may arrive without the live progress steps).
            if event.obo_claims and not event.aadsts:
                self._lit_before("search")
                if not self.step("obo").lit:
                    self._set("obo", state=StepState.CACHE_HIT if event.cache_hit else StepState.DONE)
            elif ran_as:
                self._lit_before("obo")
            step = event.step or (FailedStep.OBO_EXCHANGE if event.aadsts else None)
            self._on_failure(_Failure(event.error or "", step, event.aadsts))
            return
        self._lit_before("search")
        if event.cache_hit and self.step("obo").state is StepState.DONE:
            self._set("obo", state=StepState.CACHE_HIT)
        self.documents = len(event.documents)
        self._set(
            "search",
            state=StepState.DONE,
            add_facts=(
                ("ran as", _ran_as(who, ran_as)),
                (
                    "groups",
                    _short_list(ran_as.get("groups"), 2) if ran_as.get("groups") is not None else None,
                ),
                ("documents", f"{len(event.documents)} visible"),
            ),
        )

    def _on_failure(self, failure: _Failure) -> None:
        """Stop the flow where the failing event says it failed (the first failure wins)."""
        if any(s.state is StepState.FAILED for s in self.steps):
            return
        said = _clip(_first_line(failure.message))
        key = _STEP_OF.get(failure.step or "")
        if key is None and failure.http_status in (401, 403):
            key = "validation"
        if key == "token":
            # Connecting failed: the token did not get through to a tool call.
            self._fail("token", "the MCP server did not take the call")
            self._set("token", add_facts=(("server said", said),))
        elif key == "validation":
            self._set("token", state=StepState.DONE, error=None)
            self._fail("validation", _refusal(failure.http_status))
            self._set("validation", add_facts=(("server said", said), ("fix", _VALIDATION_FIX)))
        elif key == "obo":
            self._lit_before("obo")
            self._fail("obo", explain_aadsts(failure.code, _first_line(failure.message) or None))
            self._set("obo", add_facts=(("fix", aadsts_fix(failure.code)),))
        elif key == "search":
            self._lit_before("search")
            self._fail("search", _first_line(failure.message) or "the search failed")
            self._set("search", add_facts=(("fix", search_fix(failure.message)),))
        else:
            # Where the event does not say: the first step still under way is where it stopped.
            current = next((s for s in self.steps[2:] if not s.lit), None)
            if current is not None:
                self._fail(current.key, _first_line(failure.message))


def _ran_as(who: Any, ran_as: dict[str, Any]) -> str | None:
    if not who:
        return None
    oid = ran_as.get("oid")
    return f"{who} ({oid})" if oid and oid != who else str(who)


def _count(value: Any) -> str | None:
    return f"{value} visible" if isinstance(value, int) else None


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
