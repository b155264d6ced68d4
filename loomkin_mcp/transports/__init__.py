"""How clients reach the server: stdio (`_stdio`), streamable HTTP and SSE with the status routes (`_http`), and the
records by which `loomkin-mcp status` finds a running daemon (`_daemons`). Imported by the CLI only when serving."""
