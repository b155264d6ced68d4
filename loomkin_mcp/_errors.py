"""One exception hierarchy: every message is a single sentence that says what to do."""

from __future__ import annotations


class LoomkinError(Exception):
    """Base of every error loomkin-mcp reports to a person or a model."""


class ConfigError(LoomkinError):
    """`.loomkin.toml` (or the environment) cannot be loaded; the server must not start."""


class ToolInputError(LoomkinError):
    """A tool was called with input it cannot act on (bad path, no match, refused command...)."""


class PathRefused(ToolInputError):
    """A path points outside the project, or somewhere the rules forbid."""


class PermissionRefused(ToolInputError):
    """The project's rules or the person said no."""


def counted(number: int, noun: str) -> str:
    """`1 rule`, `2 rules`: a count and its noun, in the right number."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def one_line(text: str) -> str:
    """`text` on one line: control and invisible characters shown escaped (`\\n`, `\\u202e`), not acted on."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
