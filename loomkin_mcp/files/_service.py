"""Reading, writing, editing and listing files inside the workspace; writes are atomic."""

from __future__ import annotations

import difflib
import logging
import os
import stat
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .._errors import ToolInputError
from .._fs import SwappedPath, atomic_write_at, open_directory_beneath, open_file_beneath
from ..workspace import Workspace

DEFAULT_READ_LIMIT = 2000
# Files up to this size are read on the event loop: well under a millisecond, less than a thread hop costs.
INLINE_READ_BYTES = 64 * 1024
MAX_LINE_CHARS = 2000
# One read returns at most this much text, whatever `limit` says.
MAX_READ_CHARS = 200_000
# How far into a file one read may go looking for its lines: a 1 GB log is not read whole.
MAX_READ_SCAN_BYTES = 64 * 1024 * 1024
# Bytes of one line we read at most; the rest of a longer line is skipped, never loaded.
_MAX_LINE_BYTES = 64 * 1024
_BINARY_SNIFF_BYTES = 8192
_SIMILAR_CHARS = 400
MAX_WRITE_BYTES = 64 * 1024 * 1024
MAX_EDIT_FILE_BYTES = 64 * 1024 * 1024
MAX_DIFF_CHARS = 20_000
MAX_LIST_ENTRIES = 500

logger = logging.getLogger("loomkin_mcp.files")


@dataclass(frozen=True)
class WriteResult:
    relative: str
    created: bool
    size: int


@dataclass(frozen=True)
class Change:
    """A file's text before and after an edit."""

    relative: str
    before: str
    after: str

    @property
    def diff(self) -> str:
        return _unified_diff(self.relative, self.before, self.after, None)


@dataclass(frozen=True)
class FileText:
    path: Path
    """The file read, resolved."""
    text: str


class FileService:
    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace
        # Tools run concurrently: writes to one file are serialised so no edit is lost. Weak values:
        # a lock lives while someone holds it, so a long-lived server does not keep one per file forever.
        self._locks: weakref.WeakValueDictionary[Path, threading.Lock] = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()

    def _lock(self, path: Path) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(path)
            if lock is None:
                lock = self._locks[path] = threading.Lock()
            return lock

    # -- read -------------------------------------------------------------------------------

    def read(
        self, file_path: str, offset: int = 1, limit: int = DEFAULT_READ_LIMIT, max_size: int | None = None
    ) -> FileText | None:
        """Numbered lines of `file_path`; None, before anything is read, when it is over `max_size` bytes (the
        caller reads small files on the event loop, larger ones in a worker thread)."""
        if offset < 1:
            raise ToolInputError(f"offset is {offset}; lines are numbered from 1, so give offset=1 or more.")
        if limit < 1:
            raise ToolInputError(f"limit is {limit}; give the number of lines to read, 1 or more.")
        path = self._ws.resolve(file_path)
        relative = self._ws.relative(path)
        size = _require_regular_file(path, relative)
        if max_size is not None and size > max_size:
            return None
        with self._open_for_read(path, relative) as handle:
            head = handle.read(_BINARY_SNIFF_BYTES)
            if b"\x00" in head:
                raise ToolInputError(
                    f"'{relative}' looks binary (it contains NUL bytes), so it cannot be shown as text."
                )
            handle.seek(0)
            return FileText(path, _numbered_lines(handle, relative, offset, limit))

    # -- write ------------------------------------------------------------------------------

    def write(self, file_path: str, content: str) -> WriteResult:
        path = self._ws.resolve_for_write(file_path)
        relative = self._ws.relative(path)
        data = _encode(content, "content")
        if len(data) > MAX_WRITE_BYTES:
            raise ToolInputError(
                f"content is {len(data)} bytes; files over {MAX_WRITE_BYTES} bytes are refused, split the content."
            )
        with self._lock(path), self._parent(path, relative, create=True) as parent:
            try:
                info = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                info = None
            if info is not None and stat.S_ISDIR(info.st_mode):
                raise ToolInputError(f"'{relative}' is a directory; give a file path inside it.")
            if info is not None and not stat.S_ISREG(info.st_mode) and not stat.S_ISLNK(info.st_mode):
                # Renaming over it would silently replace a FIFO or device node with a plain file.
                raise ToolInputError(
                    f"'{relative}' is a device, socket or pipe, not a regular file; it is left as it is."
                )
            atomic_write_at(parent, path.name, data)
        created = info is None
        logger.info("%s %s (%d bytes)", "created" if created else "wrote", relative, len(data))
        return WriteResult(relative=relative, created=created, size=len(data))

    @contextmanager
    def _parent(self, path: Path, relative: str, create: bool = False) -> Iterator[int]:
        """A descriptor of `path`'s directory, walked from the root's without following a link."""
        parts = path.relative_to(self._ws.root).parts
        try:
            fd = open_directory_beneath(self._ws.root_fd, parts[:-1], create=create)
        except SwappedPath:
            raise ToolInputError(_swapped(relative)) from None
        except NotADirectoryError:
            raise ToolInputError(
                f"a part of '{relative}' is a file, so '{relative}' cannot be created under it."
            ) from None
        except FileNotFoundError:
            raise ToolInputError(f"'{relative}' does not exist; use file_search to find the file you mean.") from None
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_for_read(self, path: Path, relative: str) -> BinaryIO:
        try:
            # O_NONBLOCK: a FIFO swapped in after the check must not block the server.
            fd = open_file_beneath(self._ws.root_fd, path.relative_to(self._ws.root).parts, os.O_RDONLY)
        except SwappedPath:
            raise ToolInputError(_swapped(relative)) from None
        except PermissionError:
            raise ToolInputError(f"'{relative}' cannot be read: permission denied.") from None
        except FileNotFoundError:
            raise ToolInputError(f"'{relative}' does not exist; use file_search to find the file you mean.") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ToolInputError(f"'{relative}' is not a regular file, so it is not read.")
        return os.fdopen(fd, "rb")

    # -- edit -------------------------------------------------------------------------------

    def edit(self, file_path: str, old_string: str, new_string: str, replace_all: bool = False) -> str:
        """Replace an exact match of `old_string`; returns a unified diff of the change."""
        if old_string == "":
            raise ToolInputError("old_string is empty; to create or overwrite a whole file use file_write.")
        if old_string == new_string:
            raise ToolInputError("old_string and new_string are identical, so there is nothing to change.")
        path = self._ws.resolve_for_write(file_path)
        replaced = 0

        def change(text: str) -> str:
            nonlocal replaced
            updated, replaced = _replace(self._ws.relative(path), text, old_string, new_string, replace_all)
            return updated

        change_made = self.transform(path, change, "new_string")
        logger.info("edited %s (%d replaced)", change_made.relative, replaced)
        return _unified_diff(change_made.relative, change_made.before, change_made.after, replaced)

    def transform(self, path: Path, change: Callable[[str], str], what: str = "the new text") -> Change:
        """Apply `change` to the text of `path` (resolved for writing): under the file's lock, refused when the
        file changed on disk meanwhile, written atomically."""
        relative = self._ws.relative(path)
        _require_regular_file(path, relative)
        with self._lock(path), self._parent(path, relative) as parent:
            before = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
            if before.st_size > MAX_EDIT_FILE_BYTES:
                raise ToolInputError(f"'{relative}' is over {MAX_EDIT_FILE_BYTES} bytes; edit it in another way.")
            text = self._read_text_for_edit(path, relative)
            updated = change(text)
            if _changed_since(parent, path.name, before):
                raise ToolInputError(
                    f"'{relative}' changed on disk while it was being edited; read it again and retry the edit."
                )
            atomic_write_at(parent, path.name, _encode(updated, what))
        return Change(relative, text, updated)

    def text_of(self, path: Path, max_bytes: int) -> str:
        """The UTF-8 text of `path` (resolved), refused past `max_bytes`."""
        relative = self._ws.relative(path)
        if _require_regular_file(path, relative) > max_bytes:
            raise ToolInputError(
                f"'{relative}' is over {max_bytes >> 20} MB, more than the symbol tools read; use file_read and "
                "content_search on it."
            )
        return self._read_text_for_edit(path, relative)

    def rewrite(self, path: Path, new_text: str) -> str:
        """Replace a text file's whole content (already checked for writing); returns the diff."""
        relative = self._ws.relative(path)
        with self._lock(path), self._parent(path, relative) as parent:
            old_text = self._read_text_for_edit(path, relative)
            atomic_write_at(parent, path.name, _encode(new_text, "the new text"))
        logger.info("rewrote %s", relative)
        return _unified_diff(relative, old_text, new_text, None)

    # -- list -------------------------------------------------------------------------------

    def list_directory(self, path: str = ".", include_ignored: bool = False) -> str:
        directory = self._ws.resolve(path, what="path")
        relative = self._ws.relative(directory)
        if not directory.exists():
            raise ToolInputError(f"'{relative}' does not exist; use file_search to find the directory you mean.")
        if not directory.is_dir():
            raise ToolInputError(f"'{relative}' is a file, not a directory; use file_read to read it.")
        try:
            fd = open_directory_beneath(self._ws.root_fd, directory.relative_to(self._ws.root).parts)
        except SwappedPath:
            raise ToolInputError(_swapped(relative)) from None
        except PermissionError:
            raise ToolInputError(f"'{relative}' cannot be listed: permission denied.") from None
        except OSError:
            raise ToolInputError(f"'{relative}' is no longer a directory; list it again.") from None
        try:
            # Entries of a descriptor's scandir name their file relative to it, never through a path.
            entries = sorted(os.scandir(fd), key=lambda e: (not _is_dir(e), e.name.lower()))
            shown, hidden = self._entries(fd, entries, relative, include_ignored)
        finally:
            os.close(fd)
        header = f"{relative}/ ({len(shown)} entries)" if relative != "." else f"./ ({len(shown)} entries)"
        lines = [header, *shown[:MAX_LIST_ENTRIES]]
        if len(shown) > MAX_LIST_ENTRIES:
            lines.append(f"… {len(shown) - MAX_LIST_ENTRIES} more entries; list a subdirectory to see them.")
        if hidden:
            lines.append(f"({hidden} entries ignored by .gitignore; include_ignored=true shows them)")
        if not shown:
            lines.append("(empty)")
        return "\n".join(lines)

    def _entries(
        self, fd: int, entries: list[os.DirEntry[str]], relative: str, include_ignored: bool
    ) -> tuple[list[str], int]:
        prefix = "" if relative == "." else relative + "/"
        shown: list[str] = []
        hidden = 0
        for entry in entries:
            is_dir = _is_dir(entry)
            if entry.name == ".git":
                continue
            if not include_ignored and self._ws.ignore.is_ignored(prefix + entry.name, is_dir):
                hidden += 1
                continue
            shown.append(_describe_entry(fd, entry, is_dir))
        return shown, hidden

    def _read_text_for_edit(self, path: Path, relative: str) -> str:
        with self._open_for_read(path, relative) as handle:
            return _decode_for_edit(handle.read(), relative)


def _swapped(relative: str) -> str:
    return (
        f"'{relative}' changed while it was being used (a directory on its way became a symlink); "
        "check the path and try again."
    )


def _decode_for_edit(raw: bytes, relative: str) -> str:
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
        raise ToolInputError(f"'{relative}' looks binary (it contains NUL bytes), so it cannot be edited as text.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolInputError(
            f"'{relative}' is not valid UTF-8 (byte {exc.start}), so a text edit could corrupt it; "
            "rewrite it with file_write if that is intended."
        ) from None


def _replace(relative: str, text: str, old_string: str, new_string: str, replace_all: bool) -> tuple[str, int]:
    """`text` with the edit applied, and how many occurrences were replaced."""
    old, new = _match_line_endings(text, old_string), _match_line_endings(text, new_string)
    count = text.count(old)
    if count == 0:
        raise ToolInputError(_no_match_message(relative, text, old_string))
    if count > 1 and not replace_all:
        lines = _match_lines(text, old)
        shown = ", ".join(map(str, lines[:20])) + (", …" if len(lines) > 20 else "")
        raise ToolInputError(
            f"old_string occurs {count} times in '{relative}' (lines {shown}); add surrounding lines to make "
            "it unique, or set replace_all=true to replace every occurrence."
        )
    if replace_all:
        return text.replace(old, new), count
    return text.replace(old, new, 1), 1


def _changed_since(parent: int, name: str, before: os.stat_result) -> bool:
    after = os.stat(name, dir_fd=parent, follow_symlinks=False)
    return (after.st_mtime_ns, after.st_size, after.st_ino) != (before.st_mtime_ns, before.st_size, before.st_ino)


def _encode(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ToolInputError(
            f"{what} has an unpaired surrogate at character {exc.start}, which is not text; remove it."
        ) from None


def _require_regular_file(path: Path, relative: str) -> int:
    """The size of the regular file at `path`; a directory, device, socket or pipe is refused (never opened)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ToolInputError(f"'{relative}' does not exist; use file_search to find the file you mean.") from None
    if stat.S_ISDIR(info.st_mode):
        raise ToolInputError(f"'{relative}' is a directory; use directory_list to see what it holds.")
    if not stat.S_ISREG(info.st_mode):
        raise ToolInputError(f"'{relative}' is not a regular file (a device, socket or pipe), so it is not read.")
    return info.st_size


def _numbered_lines(handle, relative: str, offset: int, limit: int) -> str:  # type: ignore[no-untyped-def]
    out: list[str] = []
    size = 0
    number = 0
    cut_lines = 0
    invalid_lines = 0
    more = False
    scanned = 0  # bytes read so far (counted here: `tell()` would cost a system call per line)
    while True:
        if scanned > MAX_READ_SCAN_BYTES:
            if out:
                more = True
                break
            raise ToolInputError(
                f"line {offset} of '{relative}' lies beyond its first {MAX_READ_SCAN_BYTES >> 20} MB, further than"
                " file_read goes; use content_search to find text there."
            )
        raw = handle.readline(_MAX_LINE_BYTES)
        if not raw:
            break
        scanned += len(raw)
        if not raw.endswith(b"\n") and len(raw) == _MAX_LINE_BYTES:
            # Skip the rest of an overlong line without holding it in memory (nor past the scan limit).
            while rest := handle.readline(_MAX_LINE_BYTES):
                scanned += len(rest)
                if rest.endswith(b"\n") or scanned > MAX_READ_SCAN_BYTES:
                    break
            raw += b"\n"
        number += 1
        if number < offset:
            continue
        if number >= offset + limit or size > MAX_READ_CHARS:
            more = True
            break
        line = raw.rstrip(b"\n").rstrip(b"\r")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("utf-8", errors="replace")
            invalid_lines += 1
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + f" … [line cut at {MAX_LINE_CHARS} characters]"
            cut_lines += 1
        out.append(f"{number:>6}\t{text}")
        size += len(out[-1]) + 1
    if number == 0:
        return f"'{relative}' is empty."
    if number < offset:
        raise ToolInputError(f"offset {offset} is past the end of '{relative}', which has {number} lines.")
    notes = []
    last = offset + len(out) - 1
    if more:
        notes.append(f"showing lines {offset}-{last}; the file has more, read on with offset={last + 1}.")
    if cut_lines:
        notes.append(f"{cut_lines} long line(s) were cut at {MAX_LINE_CHARS} characters.")
    if invalid_lines:
        notes.append(f"{invalid_lines} line(s) are not valid UTF-8; undecodable bytes are shown as �.")
    return "\n".join(out + [f"[{note}]" for note in notes])


def _match_line_endings(text: str, fragment: str) -> str:
    """Models write `\\n`; a CRLF file needs `\\r\\n` in old_string and new_string alike."""
    if "\r\n" in text and "\r\n" not in fragment:
        return fragment.replace("\n", "\r\n")
    return fragment


def _match_lines(text: str, fragment: str) -> list[int]:
    lines, start = [], 0
    while (index := text.find(fragment, start)) != -1:
        lines.append(text.count("\n", 0, index) + 1)
        start = index + max(len(fragment), 1)
    return lines


def _no_match_message(relative: str, text: str, old_string: str) -> str:
    wanted = [line for line in old_string.splitlines() if line.strip()] or [old_string]
    lines = text.splitlines()
    # Compared by their first characters only: a 10 MB line must not cost minutes and gigabytes here.
    first = wanted[0].strip()[:_SIMILAR_CHARS]
    best_ratio, best_line = 0.0, 0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(first)
    for number, line in enumerate(lines[:50_000], start=1):
        matcher.set_seq1(line.strip()[:_SIMILAR_CHARS])
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best_ratio, best_line = ratio, number
    if best_ratio < 0.5:
        return f"old_string was not found in '{relative}'; read the file with file_read and copy the text exactly."
    span = lines[best_line - 1 : best_line - 1 + min(len(wanted), 6)]
    closest = " ⏎ ".join(line.strip()[:120] for line in span)
    return (
        f"old_string was not found in '{relative}'; the closest text is at line {best_line}: «{closest}» — "
        "copy it exactly (whitespace and indentation included) from file_read."
    )


def _unified_diff(relative: str, before: str, after: str, replacements: int | None) -> str:
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{relative}", f"b/{relative}"
        )
    )
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS] + f"\n… diff cut at {MAX_DIFF_CHARS} characters; read the file to see the rest.\n"
    if replacements is None:
        return f"Edited '{relative}'.\n{diff}"
    noun = "occurrence" if replacements == 1 else "occurrences"
    return f"Edited '{relative}' ({replacements} {noun} replaced).\n{diff}"


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _describe_entry(fd: int, entry: os.DirEntry[str], is_dir: bool) -> str:
    if entry.is_symlink():
        try:
            target = os.readlink(entry.name, dir_fd=fd)
        except OSError:
            target = "?"
        return f"link  {entry.name} -> {target}"
    if is_dir:
        return f"dir   {entry.name}/"
    try:
        size = entry.stat().st_size
    except OSError:
        return f"file  {entry.name}"
    return f"file  {entry.name}  {_human_size(size)}"


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
