"""Projects: a root with its trust, rules and path guard, and every service that serves it, made on demand and kept
in a registry keyed by root (`_registry`); `Services` assembles one project's services (loaded on first use)."""

from typing import TYPE_CHECKING, Any

from ._registry import Project, ProjectRegistry

if TYPE_CHECKING:
    from ._services import Services


def __getattr__(name: str) -> Any:
    if name == "Services":
        from ._services import Services

        return Services
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Project", "ProjectRegistry", "Services"]
