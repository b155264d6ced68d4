"""Requests an upstream sends its client — sampling, elicitation, roots — passed on to the editor.

An upstream's `sampling/createMessage` or `elicitation/create` goes to the editor session whose tool
call is in flight on that upstream (the latest, when several are), on that call's stream; an editor
that does not offer the capability, or no call in flight, gets the upstream a clear error instead.
`roots/list` goes to that editor when it offers roots, and is otherwise answered with the project
loomkin-mcp serves. An elicitation is shown as "NAME asks: …", escaped, so it cannot pass for loomkin's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata

from .._errors import one_line

# Editors take their time: a person answers an elicitation, a model samples.
FORWARD_TIMEOUT_SECONDS = 600.0
# What of an upstream's question is shown (escaped, on one line).
MAX_ASKED_CHARS = 2000


@dataclass(frozen=True)
class Caller:
    """The editor session a proxied tool call came from, and that call's request id."""

    session: Any
    request_id: Any

    def offers(self, capability: types.ClientCapabilities) -> bool:
        try:
            return bool(self.session.check_client_capability(capability))
        except Exception:  # noqa: BLE001 - a session without capabilities (another era) offers nothing
            return False

    async def ask(self, request: Any, result_type: type[Any]) -> Any:
        """`request` sent to the editor on the call's own stream; its result, or the error as ErrorData."""
        metadata = ServerMessageMetadata(related_request_id=self.request_id)
        try:
            return await self.session.send_request(request, result_type, FORWARD_TIMEOUT_SECONDS, metadata)
        except MCPError as exc:
            return exc.error
        except Exception as exc:  # noqa: BLE001 - no back channel (a 2026-07-28 connection), or the editor left
            return types.ErrorData(code=types.INTERNAL_ERROR, message=f"the editor could not be asked ({exc})")


class Forwarder:
    """The callbacks of one upstream's client session."""

    def __init__(self, name: str, root: Path) -> None:
        self._name = name
        self._root = root
        self.callers: list[Caller] = []
        """Editor calls in flight on this upstream, oldest first."""

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> Any:
        result_type = types.CreateMessageResultWithTools if params.tools else types.CreateMessageResult
        wanted = types.ClientCapabilities(sampling=types.SamplingCapability())
        return await self._forward("sampling", types.CreateMessageRequest(params=params), result_type, wanted)

    async def elicitation(self, context: Any, params: types.ElicitRequestParams) -> Any:
        wanted = types.ClientCapabilities(elicitation=types.ElicitationCapability())
        # The person must see who asks: an upstream can copy loomkin's own prompts word for word.
        message = f"{one_line(self._name)} asks: {one_line(params.message)[:MAX_ASKED_CHARS]}"
        labelled = params.model_copy(update={"message": message})
        return await self._forward("elicitation", types.ElicitRequest(params=labelled), types.ElicitResult, wanted)

    async def roots(self, context: Any) -> Any:
        caller = self.callers[-1] if self.callers else None
        if caller is not None and caller.offers(types.ClientCapabilities(roots=types.RootsCapability())):
            return await caller.ask(types.ListRootsRequest(), types.ListRootsResult)
        return types.ListRootsResult(roots=[types.Root(uri=self._root.as_uri(), name=self._root.name)])

    async def _forward(self, what: str, request: Any, result_type: type[Any], wanted: types.ClientCapabilities) -> Any:
        if not self.callers:
            message = f"{self._name} asked for {what} outside any tool call, so there is no editor to ask"
            return types.ErrorData(code=types.INVALID_REQUEST, message=message)
        caller = self.callers[-1]
        if not caller.offers(wanted):
            message = f"the editor does not offer {what}, so {self._name}'s request was declined"
            return types.ErrorData(code=types.INVALID_REQUEST, message=message)
        return await caller.ask(request, result_type)
