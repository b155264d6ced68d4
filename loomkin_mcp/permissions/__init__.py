"""Permissions: what runs without asking (`[permissions].auto_approve`), asking the person through elicitation
otherwise, and the hints each tool declares about what it may do."""

from ._asking import (
    EDITS_FILES,
    READ_ONLY,
    RUNS_COMMANDS,
    RUNS_GIT,
    WRITES_FILES,
    ApprovalOutcome,
    ask_person,
    require_approval,
)
from ._service import Approval, PermissionService

__all__ = [
    "EDITS_FILES",
    "READ_ONLY",
    "RUNS_COMMANDS",
    "RUNS_GIT",
    "WRITES_FILES",
    "Approval",
    "ApprovalOutcome",
    "PermissionService",
    "ask_person",
    "require_approval",
]
