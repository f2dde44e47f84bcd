"""Hostile expressions against the calculator: each is refused with the exact limit it is over, before the costly
step runs, by the evaluator itself, by its worker processes (a runaway is killed at the time limit), by the HTTP
service (400 with a JSON body naming the limit) and by the console's ``ask_calculator`` tool (a clear tool error)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from console.core.agents.providers import calculator_model
from console.core.agents.runner import AgentRunner
from console.core.events import EventBus
from console.core.settings import Settings
from mcp_server.arithmetic import CalculationRefused, Limits, evaluate
from mcp_server.calculator import MAX_INPUT, serve_calculator
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.workers import EvaluatorPool
from tests.agents.helpers import Recorder, agent, load_configs, write_configs
from tests.security.calculator_cases import HTTP_CASES, LIMIT_OF, NOT_ARITHMETIC, OVER_LIMIT, WITHIN


@pytest.mark.parametrize(("expression", "code", "message"), OVER_LIMIT, ids=[c[0][:24] for c in OVER_LIMIT])
def test_over_limit_expressions_are_refused_naming_the_limit(
    expression: str, code: str, message: str
) -> None:
    with pytest.raises(CalculationRefused) as refused:
        evaluate(expression)
    assert (refused.value.code, str(refused.value), refused.value.limit) == (code, message, LIMIT_OF[code])
    assert refused.value.body() == {"error": message, "code": code, "limit": LIMIT_OF[code]}


@pytest.mark.parametrize(("expression", "message"), NOT_ARITHMETIC, ids=[c[0][:24] for c in NOT_ARITHMETIC])
def test_what_is_not_arithmetic_says_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        evaluate(expression)
    assert not isinstance(error.value, CalculationRefused) and str(error.value) == message


@pytest.mark.parametrize(("expression", "value"), WITHIN, ids=[c[0][:24] for c in WITHIN])
def test_expressions_within_the_limits_are_answered(expression: str, value: int | float) -> None:
    result = evaluate(expression)
    assert result == value and type(result) is type(value)


def test_the_limits_are_settings_of_the_evaluator() -> None:
    tight = Limits(max_chars=10, max_operators=2, max_depth=1, max_digits=3)
    assert evaluate("999+0", tight) == 999
    for expression, code in (
        ("1000", "number_too_large"),
        ("10*100", "number_too_large"),
        ("1+1+1+1", "too_many_operators"),
        ("((1))", "too_deeply_nested"),
        ("1+1+1+1+1+1", "expression_too_long"),
    ):
        with pytest.raises(CalculationRefused) as refused:
            evaluate(expression, tight)
        assert refused.value.code == code, expression


# -- the worker processes ------------------------------------------------------------------------------------


@pytest.fixture
def pool() -> Iterator[EvaluatorPool]:
    workers = EvaluatorPool(size=2)
    try:
        yield workers
    finally:
        workers.close()


def test_the_pool_answers_and_refuses_exactly_as_the_evaluator(pool: EvaluatorPool) -> None:
    assert pool.evaluate("12 * (3 + 4)") == 84 and pool.evaluate("7 / 2") == 3.5
    assert pool.evaluate("10**299") == 10**299
    for expression, code, message in OVER_LIMIT:
        with pytest.raises(CalculationRefused) as refused:
            pool.evaluate(expression)
        assert (refused.value.code, str(refused.value), refused.value.limit) == (
            code,
            message,
            LIMIT_OF[code],
        )
    for expression, message in NOT_ARITHMETIC:
        with pytest.raises(ValueError) as error:
            pool.evaluate(expression)
        assert not isinstance(error.value, CalculationRefused) and str(error.value) == message
    assert len(pool.pids()) == 1 and pool.killed == []  # one worker served them all, one request at a time
    assert all(pid != os.getpid() for pid in pool.pids())


def test_a_runaway_evaluation_is_killed_at_the_time_limit_and_its_worker_replaced() -> None:
    # Limits loosened on purpose so a costly power gets through them: the time limit is the last line.
    pool = EvaluatorPool(size=1, time_limit=0.5, limits=Limits(max_digits=10**12))
    try:
        assert pool.evaluate("6 * 7") == 42
        (first,) = pool.pids()
        with pytest.raises(CalculationRefused) as refused:
            pool.evaluate("9^9^8")
        assert refused.value.code == "time_limit" and refused.value.limit == {"seconds": 0.5}
        assert str(refused.value) == (
            "the calculation took longer than 0.5 s and was stopped. Use smaller numbers or split it into steps."
        )
        assert pool.killed == [first] and pool.pids() == []
        with pytest.raises(ProcessLookupError):
            os.kill(first, 0)  # killed and reaped, not left computing
        assert pool.evaluate("6 * 7") == 42 and pool.pids() != [first]
    finally:
        pool.close()


def test_requests_beyond_busy_workers_are_refused_as_busy() -> None:
    pool = EvaluatorPool(size=1, time_limit=3.0, wait_limit=0.2, limits=Limits(max_digits=10**12))
    outcome: list[BaseException] = []

    def runaway() -> None:
        try:
            pool.evaluate("9^9^8")
        except CalculationRefused as exc:
            outcome.append(exc)

    thread = threading.Thread(target=runaway)
    try:
        thread.start()
        while not pool.pids():  # the runaway holds the only worker
            thread.join(0.01)
        with pytest.raises(CalculationRefused) as refused:
            pool.evaluate("1+1")
        assert refused.value.code == "busy" and refused.value.limit == {"workers": 1, "wait_seconds": 0.2}
        assert str(refused.value) == "every calculator worker stayed busy for 0.2 s; try again in a moment."
    finally:
        thread.join(10)
        pool.close()
    assert [getattr(e, "code", None) for e in outcome] == ["time_limit"]


def test_closing_the_pool_stops_its_workers() -> None:
    pool = EvaluatorPool(size=2)
    assert pool.evaluate("1+1") == 2
    (pid,) = pool.pids()
    pool.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="shutting down"):
        pool.evaluate("1+1")


# -- the HTTP service and the console's tool -------------------------------------------------------------------


@pytest.fixture(scope="module")
def calculator() -> Iterator[ThreadedServer]:
    server = serve_calculator(calculator_model(Settings()))
    try:
        yield server
    finally:
        server.stop()


def test_run_answers_400_naming_the_limit(calculator: ThreadedServer) -> None:
    with httpx2.Client(trust_env=False, timeout=30) as client:
        for text, code, message in HTTP_CASES:
            response = client.post(f"{calculator.base_url}/run", json={"input": text})
            assert response.status_code == 400, text
            assert response.json() == {"error": message, "code": code, "limit": LIMIT_OF[code]}
        long = client.post(f"{calculator.base_url}/run", json={"input": "1+" * MAX_INPUT})
        assert long.status_code == 400 and long.json() == {
            "error": '"input" is longer than 2000 characters',
            "code": "input_too_long",
            "limit": {"max_chars": 2000},
        }
        huge = client.post(f"{calculator.base_url}/run", content=b'{"input": "' + b"9" * 10_000_000 + b'"}')
        assert huge.status_code == 413 and huge.json() == {
            "error": "the request body is larger than 65536 bytes",
            "code": "body_too_large",
            "limit": {"max_bytes": 65536},
        }
        deep = client.post(f"{calculator.base_url}/run", content=b"[" * 60_000 + b"]" * 60_000)
        assert deep.status_code == 413  # over the byte limit before it is parsed
        nested = client.post(f"{calculator.base_url}/run", content=b"[" * 30_000 + b"]" * 30_000)
        assert nested.status_code == 400 and nested.json() == {
            "error": 'the body must be JSON: {"input": "12 * 7"}'
        }
        ok = client.post(f"{calculator.base_url}/run", json={"input": "what is 10^299 / 10^298?"})
        assert ok.status_code == 200 and ok.json()["output"] == "10^299 / 10^298 = 10"


async def test_the_agents_tool_says_which_limit_the_expression_is_over(
    tmp_path: Path, calculator: ThreadedServer
) -> None:
    settings = Settings(
        configs_dir=write_configs(tmp_path / "c", {"c": agent("Helper", tools=["ask_calculator"])})
    )
    bus = EventBus()
    rec = Recorder(bus)
    runner = AgentRunner(
        settings=settings, configs=load_configs(settings), bus=bus, calculator=calculator.base_url
    )
    result = await runner.run_turn("what is (((9^99)^99)^99)^99?")
    ended = rec.of("tool_ended")[0]
    expected = (
        "The calculator refused the expression: (9**99)**99 would have about 9,353 digits; numbers are "
        "limited to 300 digits. Use smaller numbers or exponents."
    )
    assert ended.tool == "ask_calculator" and ended.error == f"Tool error: {expected}"
    assert result.error is None and expected in result.output
