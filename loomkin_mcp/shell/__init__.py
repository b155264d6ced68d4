"""The shell tool's service: one command line, parsed without a shell, allowed by LOOMKIN.md's `Shell:` patterns,
run in the sandbox; and the tool (`_tools`)."""

from ._service import ShellResult, ShellService, matching_pattern, parse_command

__all__ = ["ShellResult", "ShellService", "matching_pattern", "parse_command"]
