"""The reference graph saved beside the tags, so a new process ranks from it instead of rebuilding it.

The file is a line of magic, a line of JSON (what the graph was built from, where each array lies, and what
the caller keeps with it), then the arrays' raw bytes: read with one `read` and mapped as numpy arrays, no
pickle (the file sits in the project, which may hold anything: every array is checked before use).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._fs import OwnFileRefused, atomic_write, read_own_file
from ._index import CACHE_VERSION
from ._tags import FileTags

if TYPE_CHECKING:
    import numpy as np

# Bump when what an edge means changes (its weight, which names link): a saved graph of another version is rebuilt.
GRAPH_VERSION = 1
_MAGIC = b"loomkin repo graph\n"
_DTYPES = ("int64", "float64", "uint8")
_ALIGN = 8
# A 14,000-file tree's graph is ~40 MB; one past this is not ours (a planted file): it is ignored and rebuilt.
_MAX_BYTES = 1024 * 1024 * 1024


def tags_fingerprint(tags: Mapping[str, FileTags]) -> str:
    """What a graph was built from: every file's path, mtime and size, and the versions of the graph and of the
    tags (new tags of unchanged files make another graph)."""
    digest = hashlib.blake2b(f"{GRAPH_VERSION}\0{CACHE_VERSION}\n".encode(), digest_size=20)
    for path in sorted(tags):
        file_tags = tags[path]
        digest.update(f"{path}\0{file_tags.mtime_ns}\0{file_tags.size}\n".encode())
    return digest.hexdigest()


def save_graph(path: Path, fingerprint: str, arrays: Mapping[str, np.ndarray], kept: Mapping[str, Any]) -> None:
    """Write the arrays and `kept` (JSON) for a graph built from the tags of `fingerprint`, atomically."""
    placed: list[list[object]] = []
    blobs: list[bytes] = []
    offset = 0
    for name, array in arrays.items():
        data = array.tobytes()
        placed.append([name, str(array.dtype), len(array), offset])
        padding = -len(data) % _ALIGN
        blobs.append(data + b"\0" * padding)
        offset += len(data) + padding
    header = json.dumps({"fingerprint": fingerprint, "arrays": placed, "kept": kept}, separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, b"".join([_MAGIC, header.encode(), b"\n", *blobs]))


@dataclass(frozen=True)
class SavedGraph:
    fingerprint: str
    """The `tags_fingerprint` of the tags the graph was built from: it serves only those."""
    arrays: dict[str, np.ndarray]
    kept: dict[str, Any]


def load_graph(path: Path) -> SavedGraph | None:
    """The graph saved at `path`, when the file holds one as `save_graph` writes it; else None."""
    import numpy as np

    try:
        found = read_own_file(path, path.parent, _MAX_BYTES)
    except OwnFileRefused:
        return None
    if found is None or found.truncated or not found.data.startswith(_MAGIC):
        return None
    data = bytearray(found.data)  # writable arrays: the engine grows some in place
    end = data.find(b"\n", len(_MAGIC))
    try:
        header = json.loads(data[len(_MAGIC) : end]) if end > 0 else None
        if not isinstance(header, dict) or not isinstance(header.get("fingerprint"), str):
            return None
        start = end + 1
        arrays: dict[str, np.ndarray] = {}
        for name, dtype, count, offset in header["arrays"]:
            if dtype not in _DTYPES or not isinstance(count, int) or not isinstance(offset, int) or offset % _ALIGN:
                return None
            size = np.dtype(dtype).itemsize * count
            if count < 0 or offset < 0 or start + offset + size > len(data):
                return None
            arrays[str(name)] = np.frombuffer(data, dtype=dtype, count=count, offset=start + offset)
        kept = header["kept"]
        return SavedGraph(header["fingerprint"], arrays, kept) if isinstance(kept, dict) else None
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
