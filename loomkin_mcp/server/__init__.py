"""The MCP server: loomkin's tools, resources and prompts beside its upstreams', each session served its project
(`_roots`), change notices to clients (`_subscriptions`) and what the status page shows (`_status`)."""

from ._server import LoomkinServer, TrustPromptWhen, build_server

__all__ = ["LoomkinServer", "TrustPromptWhen", "build_server"]
