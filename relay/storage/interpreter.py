"""Calling functions in an interpreter of its own (``concurrent.interpreters``), one at a time.

:class:`Interpreter` starts one, and a thread that runs :func:`serve` in it: a loop that takes
a call (a module's function and its arguments, pickled), makes it, and hands the result back
(pickled). A pipe each way wakes the other side; the caller waits on its pipe with the
process's GIL let go, and the interpreter works under its own GIL meanwhile.

Why not ``Interpreter.call``: it cost 0.5-0.8 ms a call once the interpreter had SQLAlchemy
loaded (0.17 ms when empty), against about 0.01 ms here plus the pickling (0.05 ms for a batch
of 22 reports, done by the caller). ``interpreters.Queue.get`` waits by polling, 10 ms a turn:
the pipes wake at once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import interpreters
import contextlib
import importlib
import logging
import os
import pickle
import sys
import threading
from typing import Any

_LOGGER = logging.getLogger(__name__)

#: What a failed call hands back: its exception's type and message (exceptions do not cross).
type _Raised = tuple[str, str]
_RAISED = "raised"
#: Written on the reply pipe when the interpreter's loop has ended (it failed, or was told to).
_ENDED = b"!"


class InterpreterError(RuntimeError):
    """A call raised in the interpreter, or the interpreter has stopped."""


class Interpreter:
    """An interpreter of its own that functions are called in (from one thread at a time)."""

    def __init__(self) -> None:
        self._interpreter = interpreters.create()
        self._calls = interpreters.create_queue()
        self._replies = interpreters.create_queue()
        self._wake, self._woken = os.pipe()  # (read, write): a call is waiting
        self._reply, self._replied = os.pipe()  # (read, write): its reply is
        self._ended = False
        #: Calls sent and replies read so far; replies read before their caller asked, by
        #: call number (see receive).
        self._sent = 0
        self._read = 0
        self._early: dict[int, bytes] = {}
        try:
            # It imports from where this process does (the entries the import system reads).
            path = tuple(
                os.fspath(entry) for entry in sys.path if isinstance(entry, str | os.PathLike)
            )
            self._interpreter.prepare_main(
                path=path,
                calls=self._calls,
                replies=self._replies,
                wake=self._wake,
                replied=self._replied,
            )
            self._interpreter.exec("import sys; sys.path[:] = path")
        except BaseException:
            self._release()
            raise
        self._thread = threading.Thread(target=self._run, name="hpoll-interpreter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._interpreter.exec(
                "from relay.storage.interpreter import serve\nserve(calls, replies, wake, replied)"
            )
        except interpreters.ExecutionFailed as err:
            # Its type only: a message may hold data.
            kind = getattr(err.excinfo.type, "__name__", "an exception")
            _LOGGER.error("the interpreter's loop ended with %s", kind)
        finally:
            # Whoever waits for a reply learns that none will come.
            with contextlib.suppress(OSError):
                os.write(self._replied, _ENDED)

    def call[T](self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in the interpreter (a module's function; plain, picklable
        arguments and result); its exception comes back as :class:`InterpreterError`."""
        result: T = self.receive(self.send(function, *args))
        return result

    def send(self, function: Callable[..., Any], *args: Any) -> int:
        """Start ``function(*args)`` (after the calls sent before it); its number, for
        :meth:`receive`."""
        if self._ended:
            raise InterpreterError("the interpreter has stopped")
        call = (function.__module__, function.__qualname__, args)
        self._calls.put(pickle.dumps(call, pickle.HIGHEST_PROTOCOL))
        os.write(self._woken, b".")
        self._sent += 1
        return self._sent - 1

    def receive(self, number: int) -> Any:
        """The result of call ``number``, once it is made (calls are made in the order sent;
        replies to earlier calls that arrive first are kept for their own receive)."""
        while number not in self._early:
            if self._ended or os.read(self._reply, 1) == _ENDED:
                self._ended = True
                raise InterpreterError("the interpreter has stopped")
            reply = self._replies.get_nowait()
            assert isinstance(reply, bytes)
            self._early[self._read] = reply
            self._read += 1
        status, result = pickle.loads(self._early.pop(number))  # noqa: S301 (our own)
        if status == _RAISED:
            kind, message = result
            raise InterpreterError(f"{kind}: {message}")
        return result

    def close(self) -> None:
        """End the loop, then the interpreter."""
        if not self._ended:
            self._calls.put(None)
            with contextlib.suppress(OSError):
                os.write(self._woken, b".")
        self._thread.join()
        self._ended = True
        self._release()

    def _release(self) -> None:
        self._interpreter.close()
        for fd in (self._wake, self._woken, self._reply, self._replied):
            with contextlib.suppress(OSError):
                os.close(fd)


def serve(calls: Any, replies: Any, wake: int, replied: int) -> None:
    """The interpreter's loop: each call made in turn, until told to end (None)."""
    while True:
        os.read(wake, 1)
        call = calls.get_nowait()
        if call is None:
            return
        module, name, args = pickle.loads(call)  # noqa: S301 (our own)
        try:
            function: Any = importlib.import_module(module)
            for part in name.split("."):
                function = getattr(function, part)
            reply = pickle.dumps(("done", function(*args)), pickle.HIGHEST_PROTOCOL)
        except BaseException as err:  # handed back: exceptions do not cross
            # Even SystemExit: the loop ends only when told to; the caller hears the rest.
            failed = (_RAISED, (type(err).__name__, str(err)))
            reply = pickle.dumps(failed, pickle.HIGHEST_PROTOCOL)
        replies.put(reply)
        os.write(replied, b".")
