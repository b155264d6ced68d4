"""Sizes every transport accepts."""

from __future__ import annotations

# One JSON-RPC message, over HTTP or on stdin: a 64 MB file_write, JSON-escaped, still fits.
MAX_MESSAGE_BYTES = 80 * 1024 * 1024
