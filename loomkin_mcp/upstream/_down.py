"""The one error an upstream call raises (light: the server catches it without loading the client)."""

from .._errors import LoomkinError


class UpstreamDown(LoomkinError):
    """The upstream is not connected, or failed the call (its message says why and what happens next)."""
