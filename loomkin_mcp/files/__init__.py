"""Files: reading, writing and editing inside the project by descriptor (never following a planted link out), and
the tools over them (`_tools`)."""

from ._service import FileService

__all__ = ["FileService"]
