"""A symbol of a file as the symbol tools see it, and name paths (`Class/method`, `Mod.Name/fun/1`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .._errors import ToolInputError

# Kinds kept inside a function's body: nested functions and classes, not its local variables.
_CALLABLE_OR_TYPE = frozenset(
    {"class", "function", "method", "module", "interface", "struct", "enum", "constructor", "namespace", "macro"}
)


@dataclass
class Symbol:
    """A definition and where it is in its file's text (string offsets; `end` exclusive)."""

    name: str
    kind: str
    start: int
    end: int
    name_at: int
    """Where the name itself is (what references are asked for)."""
    outer_start: int | None = None
    """Where text inserted before it goes, when that is before `start` (decorators, a template line)."""
    arity: int | None = None
    clauses: int = 1
    children: list[Symbol] = field(default_factory=list)
    parent: Symbol | None = field(default=None, repr=False)

    @property
    def path(self) -> list[str]:
        names = []
        symbol: Symbol | None = self
        while symbol is not None:
            names.append(symbol.name)
            symbol = symbol.parent
        return names[::-1]

    @property
    def name_path(self) -> str:
        suffix = f"/{self.arity}" if self.arity is not None else ""
        return "/".join(self.path) + suffix

    @property
    def insert_at(self) -> int:
        return self.start if self.outer_start is None else self.outer_start

    def walk(self) -> Iterator[Symbol]:
        yield self
        for child in self.children:
            yield from child.walk()


def nest(flat: list[Symbol]) -> list[Symbol]:
    """Symbols as a tree by their ranges (a symbol inside another's range is its child); the locals of
    functions (variables a language server lists) are left out."""
    ordered = sorted(flat, key=lambda s: (s.start, -s.end))
    roots: list[Symbol] = []
    stack: list[Symbol] = []
    for symbol in ordered:
        while stack and not (stack[-1].start <= symbol.start and symbol.end <= stack[-1].end):
            stack.pop()
        parent = stack[-1] if stack else None
        if parent is not None and parent.kind in ("function", "method", "constructor"):
            if symbol.kind not in _CALLABLE_OR_TYPE:
                continue
        symbol.parent = parent
        (parent.children if parent else roots).append(symbol)
        stack.append(symbol)
    return roots


def group_clauses(symbols: list[Symbol]) -> list[Symbol]:
    """Consecutive clauses of one function (Elixir's `def f(0)`, `def f(n)`) as one symbol spanning them."""
    grouped: list[Symbol] = []
    for symbol in symbols:
        symbol.children = group_clauses(symbol.children)
        last = grouped[-1] if grouped else None
        if (
            last is not None
            and symbol.arity is not None
            and (last.name, last.kind, last.arity) == (symbol.name, symbol.kind, symbol.arity)
        ):
            last.end = symbol.end
            last.clauses += 1
            for child in symbol.children:
                child.parent = last
            last.children += symbol.children
            continue
        grouped.append(symbol)
    return grouped


@dataclass(frozen=True)
class NamePath:
    """What a tool was asked for: `method`, `Class/method`, `/Top/level` (from the top), `Mod/fun/2` (an arity)."""

    names: tuple[str, ...]
    absolute: bool
    arity: int | None
    substring: bool

    @classmethod
    def parse(cls, raw: str, substring: bool = False) -> NamePath:
        text = raw.strip()
        absolute = text.startswith("/")
        names = [part for part in text.strip("/").split("/")]
        if not text.strip("/") or any(not part.strip() for part in names):
            raise ToolInputError(
                f"name_path '{raw}' is not a name path; give names joined by `/`, e.g. `MyClass/my_method`."
            )
        arity = None
        if len(names) > 1 and names[-1].isdigit():
            arity = int(names.pop())
        return cls(tuple(part.strip() for part in names), absolute, arity, substring)

    def matches(self, symbol: Symbol) -> bool:
        if self.arity is not None and symbol.arity != self.arity:
            return False
        path = symbol.path
        if len(path) < len(self.names) or (self.absolute and len(path) != len(self.names)):
            return False
        tail = path[len(path) - len(self.names) :]
        *parents, last = self.names
        if tail[:-1] != parents:
            return False
        return last in tail[-1] if self.substring else last == tail[-1]

    @property
    def last(self) -> str:
        return self.names[-1]
