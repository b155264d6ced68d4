"""Language servers: the project's servers from `[lsp].servers` (or detected), kept in sync with every edit, their
fresh diagnostics in each edit's result (`_session` on the `loomkin_lsp_client` package), and the lsp_* tools."""

from ._service import LspService, with_diagnostics

__all__ = ["LspService", "with_diagnostics"]
