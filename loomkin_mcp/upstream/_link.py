"""The raw side of a stdio upstream's pipe: JSON-RPC lines of relayed calls, written and read beside the client
session's own (see `_relay`).

A relayed call's id and progress token are `lkrelay-N`, strings the client session never uses (its ids are
integers), so a line is the relay's only when it answers one of those.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

RELAY_PREFIX = "lkrelay-"
_MARK = RELAY_PREFIX.encode()


class LinkClosed(Exception):
    """The upstream's pipe closed with relayed calls in flight."""


class RawLink:
    def __init__(self) -> None:
        self._stdin: asyncio.StreamWriter | None = None
        self._answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._progress: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._count = 0

    @property
    def open(self) -> bool:
        return self._stdin is not None

    def attach(self, stdin: asyncio.StreamWriter) -> None:
        self._stdin = stdin

    def close(self) -> None:
        """The pipe is gone: every relayed call in flight fails with LinkClosed."""
        self._stdin = None
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(LinkClosed())
        self._answers.clear()
        self._progress.clear()

    def new_id(self) -> str:
        self._count += 1
        return f"{RELAY_PREFIX}{self._count}"

    async def request(
        self, call_id: str, message: dict[str, Any], on_progress: Callable[[dict[str, Any]], None] | None
    ) -> asyncio.Future[dict[str, Any]]:
        """Send `message` (its id `call_id`); the future its answer (the whole JSON-RPC message) will settle."""
        if self._stdin is None:
            raise LinkClosed()
        answer = asyncio.get_running_loop().create_future()
        self._answers[call_id] = answer
        if on_progress is not None:
            self._progress[call_id] = on_progress
        await self.send(message)
        return answer

    def forget(self, call_id: str) -> None:
        """No answer is waited for any more (the call timed out or was cancelled): a late one is dropped."""
        self._answers.pop(call_id, None)
        self._progress.pop(call_id, None)

    async def send(self, message: dict[str, Any]) -> None:
        if self._stdin is None:
            raise LinkClosed()
        self._stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await self._stdin.drain()

    def claim(self, line: bytes) -> bool:
        """Whether `line` is the answer to, or progress of, a relayed call (then it is delivered here)."""
        if not self._answers or _MARK not in line:
            return False
        try:
            message = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict):
            return False
        call_id = message.get("id")
        if isinstance(call_id, str) and "method" not in message and call_id in self._answers:
            answer = self._answers.pop(call_id)
            self._progress.pop(call_id, None)
            if not answer.done():
                answer.set_result(message)
            return True
        params = message.get("params")
        if message.get("method") == "notifications/progress" and isinstance(params, dict):
            report = self._progress.get(params.get("progressToken"))  # type: ignore[arg-type]
            if report is not None:
                report(params)
                return True
        return False
