"""The logic behind the tools; each service works on a Workspace and knows nothing of MCP."""

from __future__ import annotations

from dataclasses import dataclass

from ..decisions._service import DecisionService, ExportFormat, QueryType
from ..files._service import FileService
from ..git._service import GitArgs, GitOperation, GitService, is_read_only, refuse_git_program_options
from ..lsp._service import LspService
from ..permissions._service import Approval, PermissionService
from ..repomap._service import RepoMapService
from ..sandbox._service import Sandbox, SandboxState
from ..search._service import OutputMode, SearchService
from ..shell._service import ShellResult, ShellService, matching_pattern, parse_command
from ..symbols import SymbolService
from ..workspace import Workspace


@dataclass(frozen=True)
class Services:
    workspace: Workspace
    files: FileService
    shell: ShellService
    git: GitService
    sandbox: Sandbox
    permissions: PermissionService
    lsp: LspService
    search: SearchService
    repomap: RepoMapService
    decisions: DecisionService
    symbols: SymbolService

    @classmethod
    def for_workspace(cls, workspace: Workspace) -> Services:
        sandbox = Sandbox(workspace)
        lsp, search = LspService(workspace, sandbox), SearchService(workspace, sandbox)
        files, repomap = FileService(workspace), RepoMapService(workspace, search, lsp, sandbox)
        return cls(
            workspace=workspace,
            files=files,
            shell=ShellService(workspace, sandbox),
            git=GitService(workspace, sandbox),
            sandbox=sandbox,
            permissions=PermissionService(workspace),
            lsp=lsp,
            search=search,
            repomap=repomap,
            decisions=DecisionService(workspace, sandbox),
            symbols=SymbolService(workspace, files, lsp, search, repomap),
        )


__all__ = [
    "Approval",
    "DecisionService",
    "ExportFormat",
    "FileService",
    "GitArgs",
    "GitOperation",
    "GitService",
    "LspService",
    "OutputMode",
    "SearchService",
    "Sandbox",
    "SandboxState",
    "PermissionService",
    "QueryType",
    "RepoMapService",
    "Services",
    "ShellResult",
    "ShellService",
    "is_read_only",
    "matching_pattern",
    "parse_command",
    "refuse_git_program_options",
]
