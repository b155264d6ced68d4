"""Which tools run without asking the person: `[permissions].auto_approve` names and globs."""

from __future__ import annotations

import fnmatch

from pydantic import BaseModel, Field

from ..workspace import Workspace


class Approval(BaseModel):
    """What the person is asked to confirm before a tool changes something."""

    approve: bool = Field(default=True, description="Allow this action")


class PermissionService:
    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def needs_approval(self, tool_name: str) -> bool:
        patterns = self._ws.config.permissions.auto_approve
        return not any(fnmatch.fnmatchcase(tool_name, pattern) for pattern in patterns)
