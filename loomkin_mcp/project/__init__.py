"""Projects: a root with its trust, rules and path guard, and every service that serves it, made on demand and kept
in a registry keyed by root (`_registry`); `Services` assembles one project's services (loaded on first use)."""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from ._registry import Project, ProjectRegistry

if TYPE_CHECKING:
    from ._services import Services

__getattr__ = lazy_attributes(__name__, {"Services": "._services"})


__all__ = ["Project", "ProjectRegistry", "Services"]
