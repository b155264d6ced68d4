"""The project root, the path guard (the only place paths are resolved), LOOMKIN.md and ignore rules."""

from ._glob import compile_glob, glob_matches
from ._guard import PathGuard
from ._ignore import IgnoreRules
from ._rules import RULES_FILENAMES, Rules, RulesFile, parse_rules
from ._workspace import Workspace

__all__ = [
    "RULES_FILENAMES",
    "IgnoreRules",
    "PathGuard",
    "Rules",
    "RulesFile",
    "Workspace",
    "compile_glob",
    "glob_matches",
    "parse_rules",
]
