"""Whether this machine can confine the programs loomkin starts (bubblewrap or sandbox-exec), probed once and
re-probed after a failure; the confinement itself (argv, seccomp filter, environment) is `loomkin_mcp._confine`."""

from ._service import Sandbox, SandboxState

__all__ = ["Sandbox", "SandboxState"]
