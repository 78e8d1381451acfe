"""What the command-line modules share (``cli`` and ``cli_live``): the program's name, the
signals that stop a run, argument types, and the one-line messages on stdout and stderr.

Like ``cli``, it imports only modules the interpreter has loaded before running our code.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

PROG = "fastpcap"

#: Signals that end a run like Ctrl-C: outputs cleaned up, a status of 128 + the signal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGPIPE") if hasattr(signal, name))


class Stopped(BaseException):
    """A signal that ends the run (SIGTERM, SIGHUP, SIGPIPE), raised so that outputs are
    cleaned up as on Ctrl-C; ``status`` is the exit status."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.status = 128 + signum
        self.name = signal.Signals(signum).name


def integer(text: str) -> int:
    import argparse

    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def at_least(low: int) -> Callable[[str], int]:
    """An argument type: an integer no smaller than ``low``."""

    def check(text: str) -> int:
        import argparse

        value = integer(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return check


positive_int = at_least(1)
non_negative_int = at_least(0)


def print_line(text: str) -> None:
    if sys.stdout is None:
        raise OSError(9, "stdout is closed", "<stdout>")
    print(text, flush=True)


def load(module: str) -> Any:
    """Import a heavy module (numpy and the core) with the stopping signals held back until it
    is loaded: numpy turns a KeyboardInterrupt inside its import into an ImportError."""
    import importlib

    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks to hold them with
        return importlib.import_module(module, __package__)
    held = {signal.SIGINT, *STOP_SIGNALS}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        return importlib.import_module(module, __package__)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a held signal is raised now


def is_batch(args: argparse.Namespace) -> bool:
    """Whether the command line names many captures (more than one input, a folder, a glob)
    or asks for a combined table."""
    import glob

    if len(args.inputs) > 1 or args.combine is not None:
        return True
    (one,) = args.inputs
    return one != "-" and (os.path.isdir(one) or (glob.has_magic(one) and not os.path.exists(one)))


def error(message: str) -> None:
    stderr(f"{PROG}: error: {message}")


def stderr(line: str) -> None:
    if sys.stderr is None:  # started with stderr closed (`2>&-`): the status says it
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # a terminal that went away (hang-up), a closed pipe
        pass
