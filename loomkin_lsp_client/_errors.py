"""Errors of the language-server client; each message is one sentence a person can act on."""

from __future__ import annotations


class LspError(Exception):
    """A language server could not be started or did not do what was asked."""


class ServerTimeout(LspError):
    """A request got no answer in time."""


class ServerCrashed(LspError):
    """The server process is gone."""
