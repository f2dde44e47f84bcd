"""The one tool registry: every tool an agent config may name, by name.

Time and date are real. Weather, temperature, forecast and the simulation stand in for services this demo
does not have, and their outputs say so. ``ask_calculator`` calls the remote calculator agent over HTTP (a
remote agent used as a tool, distinct from agent-as-tool). ``web_search`` is OpenAI's hosted tool: only a
real OpenAI Responses model can run it, so validation warns when an offline agent names it.

The older names ``calculator`` and ``perform_simulation`` are kept as aliases: configs that use them validate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
from agents import FunctionTool, RunContextWrapper, Tool, WebSearchTool, function_tool

from console.core.agents.context import AgentContext
from console.core.agents.tracing import mask_text

ToolKind = Literal["function", "remote_agent", "hosted"]

_CONDITIONS = ["sunny", "partly cloudy", "cloudy", "light rain", "showers", "windy", "foggy"]


def _demo_number(seed: str, low: int, high: int) -> int:
    """Deterministic demo values: the same city gives the same answer every time."""
    digest = hashlib.sha256(seed.lower().encode()).digest()
    return low + int.from_bytes(digest[:4], "big") % (high - low + 1)


def _weather(city: str) -> tuple[str, int]:
    return _CONDITIONS[_demo_number(city + "|c", 0, len(_CONDITIONS) - 1)], _demo_number(city + "|t", -5, 32)


async def get_current_time() -> str:
    """Get the current local time (real: read from this computer's clock)."""
    now = dt.datetime.now().astimezone()
    return f"The current time is {now:%H:%M} ({now.tzname()})."


async def get_current_date() -> str:
    """Get today's date (real: read from this computer's clock)."""
    return f"Today is {dt.date.today():%A, %d %B %Y}."


async def get_current_weather(city: str) -> str:
    """Get the current weather conditions for a city. Returns demo data: no weather service is connected.

    Args:
        city: The city to report the weather for, e.g. Paris.
    """
    condition, temp = _weather(city)
    return f"Demo data (no weather service connected): in {city} it is {condition}, {temp} °C."


async def get_current_temperature(city: str) -> str:
    """Get the current temperature in degrees Celsius for a city. Returns demo data.

    Args:
        city: The city to report the temperature for, e.g. Paris.
    """
    _, temp = _weather(city)
    return f"Demo data (no weather service connected): the temperature in {city} is {temp} °C."


async def get_seven_day_forecast(city: str) -> str:
    """Get the weather forecast for the next seven days for a city. Returns demo data.

    Args:
        city: The city to forecast, e.g. Paris.
    """
    today = dt.date.today()
    days = []
    for offset in range(1, 8):
        day = today + dt.timedelta(days=offset)
        condition, temp = _weather(f"{city}|{day.isoformat()}")
        days.append(f"{day:%a %d}: {condition}, {temp} °C")
    return f"Demo data (no weather service connected), 7-day forecast for {city}: " + "; ".join(days) + "."


async def run_simulation(name: str, address: str, income: float) -> str:
    """Run the financial simulation for a person. Needs their name, address and yearly income. Demo only.

    Args:
        name: The person's full name.
        address: The person's home address.
        income: The person's yearly income, a number.
    """
    rate = 0.1 if income < 30_000 else 0.2 if income < 80_000 else 0.3
    tax = round(income * rate)
    return (
        f"Demo simulation (no real simulator connected) for {name}, {address}: yearly income {income:,.0f}, "
        f"estimated tax {tax:,} ({rate:.0%}), net {income - tax:,.0f}."
    )


async def ask_calculator(ctx: RunContextWrapper[AgentContext], expression: str) -> str:
    """Ask the remote calculator agent to work out an arithmetic expression, e.g. 12 * (3 + 4).

    Args:
        expression: The arithmetic expression to calculate.
    """
    url = ctx.context.calculator_url if isinstance(ctx.context, AgentContext) else None
    if not url:
        raise RuntimeError("No calculator service is configured (start the local stack, or set its URL).")
    try:
        async with httpx2.AsyncClient(timeout=30.0, trust_env=False) as client:
            response = await client.post(f"{url.rstrip('/')}/run", json={"input": expression})
    except httpx2.HTTPError as exc:
        raise RuntimeError(
            f"The calculator service at {url} is not reachable ({type(exc).__name__})."
        ) from exc
    if response.status_code in (400, 429):
        raise RuntimeError(_calculator_refusal(response))
    if response.status_code != 200:
        raise RuntimeError(
            f"The calculator service answered HTTP {response.status_code}: {response.text[:200]}"
        )
    return str(response.json().get("output", ""))


def _calculator_refusal(response: httpx2.Response) -> str:
    """The calculator's own words for a refused expression (its JSON ``error``), e.g. which limit it is over."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, str) or not error:
        return f"The calculator service answered HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code == 429:
        return f"The calculator is busy: {error[:300]}"
    return f"The calculator refused the expression: {error[:300]}"


@dataclass(frozen=True)
class ToolSpec:
    """One registry entry. ``offline`` is False for hosted tools the offline demo model cannot run."""

    name: str
    kind: ToolKind
    make: Callable[[], Tool]
    offline: bool = True
    alias_of: str | None = None


def tool_error(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """What the model (and the console) sees when a tool fails: the reason, never a traceback or a secret."""

    return f"Tool error: {mask_text(str(error)) or type(error).__name__}"


def _fn(func: Callable[..., Any], name: str | None = None) -> Callable[[], Tool]:
    return lambda: function_tool(func, name_override=name or func.__name__, failure_error_function=tool_error)


_SPECS: list[ToolSpec] = [
    ToolSpec("get_current_time", "function", _fn(get_current_time)),
    ToolSpec("get_current_date", "function", _fn(get_current_date)),
    ToolSpec("get_current_weather", "function", _fn(get_current_weather)),
    ToolSpec("get_current_temperature", "function", _fn(get_current_temperature)),
    ToolSpec("get_seven_day_forecast", "function", _fn(get_seven_day_forecast)),
    ToolSpec("run_simulation", "function", _fn(run_simulation)),
    ToolSpec(
        "perform_simulation", "function", _fn(run_simulation, "perform_simulation"), alias_of="run_simulation"
    ),
    ToolSpec("ask_calculator", "remote_agent", _fn(ask_calculator)),
    ToolSpec("calculator", "remote_agent", _fn(ask_calculator, "calculator"), alias_of="ask_calculator"),
    ToolSpec("web_search", "hosted", lambda: WebSearchTool(), offline=False),
]

REGISTRY: dict[str, ToolSpec] = {spec.name: spec for spec in _SPECS}
TOOL_NAMES: frozenset[str] = frozenset(REGISTRY)


def known_tools() -> frozenset[str]:
    """Every tool name a config may use (for validation)."""
    return TOOL_NAMES


def tool_kind(name: str) -> ToolKind | None:
    spec = REGISTRY.get(name)
    return spec.kind if spec else None


def build_tool(name: str) -> Tool:
    """A fresh tool object for ``name`` (raises KeyError for unknown names; validation catches those first)."""
    return REGISTRY[name].make()


def describe(name: str) -> str:
    tool = build_tool(name)
    return tool.description if isinstance(tool, FunctionTool) else f"{name} (hosted by the model provider)"
