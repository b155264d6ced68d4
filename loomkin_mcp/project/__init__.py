"""Projects: a root with its trust, rules and path guard, and every service that serves it, made on demand and kept
in a registry keyed by root (`_registry`); `Services` assembles one project's services."""

from ._registry import Project, ProjectRegistry
from ._services import Services

__all__ = ["Project", "ProjectRegistry", "Services"]
