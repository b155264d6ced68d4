"""The project root, the path guard (the only place paths are resolved), LOOMKIN.md and ignore rules."""

from ._git import PROGRAM_KEYS, GitPrograms, enclosing_repository, git_environment, program_key
from ._glob import compile_glob, glob_matches
from ._guard import PROTECTED_FILES, STATE_DIR, PathGuard, is_protected, refused_root
from ._ignore import IgnoreRules
from ._instructions import CONVENTION_FILES, Instructions, abridge
from ._rules import ENFORCED_SECTIONS, RULES_FILENAMES, Rules, RulesFile, parse_rules
from ._trust import Grant, Trust, TrustStore
from ._workspace import Workspace

__all__ = [
    "CONVENTION_FILES",
    "ENFORCED_SECTIONS",
    "Instructions",
    "abridge",
    "PROTECTED_FILES",
    "STATE_DIR",
    "RULES_FILENAMES",
    "IgnoreRules",
    "PathGuard",
    "Rules",
    "RulesFile",
    "GitPrograms",
    "PROGRAM_KEYS",
    "enclosing_repository",
    "git_environment",
    "program_key",
    "Grant",
    "Trust",
    "TrustStore",
    "Workspace",
    "compile_glob",
    "glob_matches",
    "is_protected",
    "refused_root",
    "parse_rules",
]
