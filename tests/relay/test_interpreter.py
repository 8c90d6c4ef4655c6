"""Calls into an interpreter of its own (relay/storage/interpreter.py), as the SQLite writer
makes them."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import interpreters
import operator
from pathlib import Path
import sys
import threading
import time

import pytest

from relay.storage.interpreter import Interpreter, InterpreterError
from tests.relay import in_writer


@pytest.fixture
def interpreter() -> Iterator[Interpreter]:
    made = Interpreter()
    yield made
    made.close()


def test_a_call_runs_in_the_other_interpreter_and_returns_its_result(
    interpreter: Interpreter,
) -> None:
    where = interpreter.call(in_writer.interpreter_id)
    assert where != interpreters.get_current().id
    assert interpreter.call(operator.add, (1, "a"), (2.5, None)) == (1, "a", 2.5, None)
    assert interpreter.call(in_writer.interpreter_id) == where  # the same one, call after call


def test_calls_are_made_in_the_order_sent_and_each_reply_reaches_its_own_caller(
    interpreter: Interpreter,
) -> None:
    """The SQLite writer sends the next batch ahead; a probe sent meanwhile gets its own
    reply, and the batch's is kept for it."""
    first = interpreter.send(time.sleep, 0.05)
    second = interpreter.send(operator.add, 2, 3)
    assert interpreter.receive(second) == 5  # read the first one's reply on the way
    assert interpreter.receive(first) is None
    assert interpreter.call(operator.add, 1, 1) == 2


def test_what_a_call_raises_comes_back_as_its_type_and_message(interpreter: Interpreter) -> None:
    with pytest.raises(InterpreterError, match=r"^ZeroDivisionError: division by zero$"):
        interpreter.call(operator.truediv, 1, 0)
    # A result that cannot cross is a failure of that call, not of the interpreter.
    with pytest.raises(InterpreterError, match=r"^TypeError: cannot pickle"):
        interpreter.call(threading.Lock)
    assert interpreter.call(operator.mul, 6, 7) == 42


def test_a_call_that_exits_fails_alone(interpreter: Interpreter) -> None:
    """Not even SystemExit ends the loop: the writer's interpreter serves on."""
    with pytest.raises(InterpreterError, match=r"^SystemExit: 3$"):
        interpreter.call(sys.exit, 3)
    assert interpreter.call(operator.mul, 6, 7) == 42


def test_an_interpreter_whose_loop_ended_says_so_instead_of_waiting(
    interpreter: Interpreter, caplog: pytest.LogCaptureFixture
) -> None:
    import os

    os.write(interpreter._woken, b".")  # woken with no call: the loop fails (it should not)
    interpreter._thread.join(10)
    with pytest.raises(InterpreterError, match="has stopped"):
        interpreter.call(operator.mul, 6, 7)
    with pytest.raises(InterpreterError, match="has stopped"):
        interpreter.call(operator.mul, 6, 7)
    assert "the interpreter's loop ended with QueueEmpty" in caplog.messages


def test_it_imports_from_where_this_process_does_whatever_the_path_holds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """sys.path may hold paths as objects (anyone may put them there): its repr once
    made the interpreter fail to start, and the writer with it."""
    (tmp_path / "hpoll_path_probe.py").write_text("def where():\n    return __file__\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), tmp_path / "elsewhere", *sys.path])
    interpreter = Interpreter()
    try:
        import hpoll_path_probe  # type: ignore[import-not-found]

        assert interpreter.call(hpoll_path_probe.where) == str(tmp_path / "hpoll_path_probe.py")
    finally:
        interpreter.close()
