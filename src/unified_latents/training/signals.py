"""SIGTERM and Ctrl-C during training: a request to stop cleanly at the next step."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm


@contextlib.contextmanager
def stop_on_signals() -> Iterator[dict[str, bool]]:
    """SIGTERM / first Ctrl-C request a clean stop (checkpoint, exit); a second Ctrl-C aborts."""
    flag = {"stop": False}

    def request_stop(signum: int, frame: Any) -> None:
        if flag["stop"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["stop"] = True
        tqdm.write(f"received {signal.Signals(signum).name}: saving a checkpoint, then stopping")

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for sig in previous:
            signal.signal(sig, request_stop)
    except ValueError:  # not the main thread (e.g. inside some notebook runners)
        previous = {}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
