"""A client for language servers: spawn them, keep documents in sync, collect diagnostics.

Built on pygls' `LanguageClient` with `lsprotocol` types; knows nothing of MCP. Importing
the package is cheap: what pulls in pygls and lsprotocol (~0.3 s) loads on first use.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._detect import detect_servers, first_file_for, languages_present, uncovered_languages
from ._errors import LspError, ServerCrashed, ServerTimeout
from ._languages import KNOWN_SERVERS, KnownServer, find_executable, known_server, language_of, program_missing
from ._process import die_with_parent
from ._spec import Launch, Launcher, ServerSpec

if TYPE_CHECKING:
    from ._connection import Published, ServerConnection
    from ._pool import LanguageServerPool, ServerStatus, Synced
    from ._text import apply_edits, offset_of, position_from_user, position_of, user_column

_LAZY = {
    "Published": "._connection",
    "ServerConnection": "._connection",
    "LanguageServerPool": "._pool",
    "ServerStatus": "._pool",
    "Synced": "._pool",
    "apply_edits": "._text",
    "offset_of": "._text",
    "position_from_user": "._text",
    "position_of": "._text",
    "user_column": "._text",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KNOWN_SERVERS",
    "KnownServer",
    "LanguageServerPool",
    "Launch",
    "Launcher",
    "LspError",
    "Published",
    "ServerConnection",
    "ServerCrashed",
    "ServerSpec",
    "ServerStatus",
    "ServerTimeout",
    "Synced",
    "apply_edits",
    "detect_servers",
    "die_with_parent",
    "find_executable",
    "program_missing",
    "first_file_for",
    "known_server",
    "language_of",
    "languages_present",
    "uncovered_languages",
    "offset_of",
    "position_from_user",
    "position_of",
    "user_column",
]
