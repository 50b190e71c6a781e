"""Tickets: how a caller waits for the writer thread to make its record durable (or not)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from rpra_agent.core.redact import scrub_secrets

__all__ = ["Flush", "Ticket", "first_line"]


class Ticket:
    """Resolved by the writer once its item is durable (``error=None``) or is not."""

    __slots__ = ("_callback", "error", "event", "item")

    def __init__(self, item: Any = None) -> None:
        self.item, self.event = item, threading.Event()
        self.error: BaseException | None = None
        self._callback: Callable[[], object] | None = None

    def resolve(self, error: BaseException | None = None) -> None:
        self.error = error
        self.event.set()
        if self._callback is not None:
            self._callback()

    def wait(self) -> None:
        self.event.wait()
        if self.error is not None:
            raise self.error

    async def await_(self) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not done.done():
                done.set_result(None)

        self._callback = lambda: loop.call_soon_threadsafe(settle)
        if self.event.is_set():  # resolved before the callback was set
            self._callback = None
        else:
            await done
        if self.error is not None:
            raise self.error


class Flush(Ticket):
    """A marker: resolved once everything queued before it is durable (or with the loss error)."""


def first_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception (its database driver cause, if any), secrets scrubbed."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return scrub_secrets(f"{type(exc).__name__}: {detail[0] if detail else ''}")
