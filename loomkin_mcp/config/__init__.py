"""`.loomkin.toml` and the environment, validated."""

from ._load import CONFIG_FILENAME, Settings, load_settings, parse_config, unknown_keys
from ._models import (
    ContextSection,
    DecisionsSection,
    Environment,
    LoomkinConfig,
    LspSection,
    LspServerEntry,
    McpSection,
    McpServerEntry,
    ModelSection,
    PermissionsSection,
    ProviderEndpoint,
    ProviderSection,
    RepoSection,
    TeamsSection,
)

__all__ = [
    "CONFIG_FILENAME",
    "ContextSection",
    "DecisionsSection",
    "Environment",
    "LoomkinConfig",
    "LspServerEntry",
    "LspSection",
    "McpServerEntry",
    "McpSection",
    "ModelSection",
    "PermissionsSection",
    "ProviderEndpoint",
    "ProviderSection",
    "RepoSection",
    "Settings",
    "TeamsSection",
    "load_settings",
    "parse_config",
    "unknown_keys",
]
