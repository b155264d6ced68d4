"""Git: the operations the git tool offers, run with every program-running key of the repository's config
neutralised; and the tool (`_tools`)."""

from ._service import GitArgs, GitOperation, GitService, is_read_only, refuse_git_program_options, run_git

__all__ = ["GitArgs", "GitOperation", "GitService", "is_read_only", "refuse_git_program_options", "run_git"]
