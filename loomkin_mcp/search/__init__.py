"""Search: file names by glob and contents by regular expression, through ripgrep under the sandbox, and the tools
over them (`_tools`)."""

from ._service import OutputMode, SearchService, find_rg

__all__ = ["OutputMode", "SearchService", "find_rg"]
