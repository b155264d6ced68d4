"""editor-configs/ and `editor-config`, launched as each editor would; `doctor` against real and broken parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from loomkin_mcp.cli._editors import (
    COMMAND_PLACEHOLDER,
    EDITORS,
    ROOT_PLACEHOLDER,
    URL_PLACEHOLDER,
    WORKSPACE_FOLDER,
    http_file,
    http_snippet,
    snippet,
)

from conftest import LOOMKIN, _http_streams, http_daemon, server_env, trust_project

CONFIGS = Path(__file__).parent.parent / "editor-configs"
EVERYTHING = Path(__file__).parent.parent / "node_modules" / ".bin" / "mcp-server-everything"
# Editors whose config is global start servers somewhere else than the project.
STARTS_IN_PROJECT = {"cursor", "vscode", "claude-code"}


def test_every_shipped_config_is_the_editors_schema() -> None:
    shipped = {path.relative_to(CONFIGS).as_posix() for path in CONFIGS.rglob("*.json")}
    http = {http_file(editor) for editor in EDITORS.values() if editor.url_key}
    assert shipped == {editor.file for editor in EDITORS.values()} | http
    for editor in EDITORS.values():
        assert json.loads((CONFIGS / editor.file).read_text()) == snippet(editor), editor.name
        if editor.url_key:
            assert json.loads((CONFIGS / http_file(editor)).read_text()) == http_snippet(editor), editor.name


@pytest.mark.anyio
async def test_each_http_config_reaches_the_daemon(project: Path) -> None:
    async with http_daemon(project, "http") as url:
        for editor in (editor for editor in EDITORS.values() if editor.url_key):
            config = json.loads((CONFIGS / http_file(editor)).read_text().replace(URL_PLACEHOLDER, url))
            server = config[editor.servers_key]["loomkin"]
            async with _http_streams(server[editor.url_key]) as streams, ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                assert "file_read" in {tool.name for tool in (await s.list_tools()).tools}, editor.name


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(EDITORS))
async def test_each_config_launches_as_its_editor_would(project: Path, name: str) -> None:
    raw = (CONFIGS / EDITORS[name].file).read_text()
    filled = raw.replace(COMMAND_PLACEHOLDER, LOOMKIN).replace(ROOT_PLACEHOLDER, str(project))
    filled = filled.replace(WORKSPACE_FOLDER, str(project))
    config = json.loads(filled)
    server = config[EDITORS[name].servers_key]["loomkin"]
    cwd = project if name in STARTS_IN_PROJECT else Path("/")
    params = StdioServerParameters(
        command=server["command"], args=server["args"], env=server_env(server.get("env")), cwd=str(cwd)
    )
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            assert "file_read" in {tool.name for tool in (await session.list_tools()).tools}


def test_editor_config_prints_this_installs_paths(project: Path) -> None:
    done = subprocess.run(
        [LOOMKIN, "editor-config", "claude-desktop"], cwd=project, capture_output=True, text=True, timeout=60
    )
    server = json.loads(done.stdout)["mcpServers"]["loomkin"]
    assert server["command"] == str(Path(sys.executable).parent / "loomkin-mcp")
    assert server["args"] == ["--stdio", "--root", str(project)]
    claude = subprocess.run(
        [LOOMKIN, "editor-config", "claude-code"], cwd=project, capture_output=True, text=True, timeout=60
    )
    command = str(Path(sys.executable).parent / "loomkin-mcp")
    assert f"`claude mcp add loomkin -- {command} --stdio`" in claude.stderr and "<" not in claude.stderr


EXPECTED_AUTH = {
    "ollama": ("Authorization", "Bearer ollama"),
    "vllm": ("x-api-key", "vllm-key"),
    "sglang": ("Authorization", "Bearer sglang-key"),
    "lms": ("Authorization", "Bearer lms-key"),
    "exo": ("Authorization", "Bearer exo-key"),
    "litellm": ("Authorization", "Bearer litellm-key"),
}


@pytest.fixture
def endpoints() -> Iterator[int]:
    """OpenAI-compatible endpoints on loopback, one path per backend, each checking its exact auth header."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            backend = self.path.split("/")[1]
            header, value = EXPECTED_AUTH.get(backend, ("", ""))
            if self.path != f"/{backend}/v1/models" or self.headers.get(header) != value:
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"data": [{"id": f"{backend}-model-a"}, {"id": f"{backend}-model-b"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()


def test_doctor_reports_what_works_and_how_to_fix_the_rest(project: Path, endpoints: int) -> None:
    base = f"http://127.0.0.1:{endpoints}"
    providers = "\n".join(
        f'{name} = {{ url = "{base}/{name}/v1"' + ("" if name == "ollama" else f', auth_key = "{name}-key"') + " }"
        for name in EXPECTED_AUTH
    )
    (project / ".loomkin.toml").write_text(
        "[lsp]\nservers = [\n"
        '  { name = "pylsp", command = "pylsp" },\n'
        '  { name = "broken-ls", command = "no-such-language-server", languages = ["python"] },\n'
        "]\n\n[mcp]\nservers = [\n"
        f'  {{ name = "everything", command = "{EVERYTHING}" }},\n'
        '  { name = "dead", command = "no-such-mcp-server" },\n'
        "]\n\n[provider.endpoints]\n"
        f"{providers}\n"
        f'wrongkey = {{ url = "{base}/vllm/v1", auth_key = "nope" }}\n'
    )
    (project / "LOOMKIN.md").write_text("## Allowed Operations\n- Shell: `make *`\n")
    trust_project(project)
    done = subprocess.run(
        [LOOMKIN, "doctor", "--json"], cwd=project, capture_output=True, text=True, timeout=120, env=server_env()
    )
    assert done.returncode == 1
    checks = {check["name"]: check for check in json.loads(done.stdout)}
    assert checks["config"]["ok"] and checks["LOOMKIN.md"]["ok"] and "make *" in checks["LOOMKIN.md"]["detail"]
    assert checks["trust"]["ok"] and "trusted" in checks["trust"]["detail"]
    assert checks["lsp pylsp"]["ok"] and "pylsp" in checks["lsp pylsp"]["detail"]
    assert not checks["lsp broken-ls"]["ok"] and "not found" in checks["lsp broken-ls"]["detail"]
    assert checks["lsp broken-ls"]["fix"]
    assert checks["upstream everything"]["ok"] and "17 tools via stdio" in checks["upstream everything"]["detail"]
    assert not checks["upstream dead"]["ok"] and checks["upstream dead"]["fix"]
    for name in EXPECTED_AUTH:
        assert checks[f"provider {name}"]["ok"], checks[f"provider {name}"]
        assert f"{name}-model-a" in checks[f"provider {name}"]["detail"]
    assert not checks["provider wrongkey"]["ok"] and "refused the key" in checks["provider wrongkey"]["detail"]
    assert checks["decision store"]["ok"] and checks["ripgrep"]["ok"] and checks["tree-sitter grammars"]["ok"]

    table = subprocess.run([LOOMKIN, "doctor"], cwd=project, capture_output=True, text=True, timeout=120,
                           env=server_env()).stdout  # fmt: skip
    assert "✔ lsp pylsp" in table and "✘ upstream dead" in table and "fix:" in table and "problem(s) found" in table


def test_setup_shows_the_change_and_writes_it_only_when_confirmed(project: Path, tmp_path: Path) -> None:
    """`setup cursor`: the diff, nothing written without --yes (no terminal to ask on), then the file with this
    install's command beside what it held; a second run changes nothing. A home config that is not plain JSON
    (Zed's comments) is left alone with the snippet to add by hand; a planted link is not followed."""
    cursor = project / ".cursor" / "mcp.json"
    cursor.parent.mkdir()
    cursor.write_text('{"mcpServers": {"other": {"command": "other-server"}}}\n')
    command = str(Path(sys.executable).parent / "loomkin-mcp")

    def setup(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LOOMKIN, "setup", *args], cwd=project, capture_output=True, text=True, timeout=60,
                              env=server_env(), stdin=subprocess.DEVNULL)  # fmt: skip

    shown = setup("cursor")
    assert shown.returncode == 1 and "--yes" in shown.stderr, shown.stderr
    assert f'+      "command": "{command}",' in shown.stdout, shown.stdout
    assert "loomkin" not in cursor.read_text()
    written = setup("cursor", "--yes")
    assert written.returncode == 0, written.stderr
    servers = json.loads(cursor.read_text())["mcpServers"]
    assert servers["other"] == {"command": "other-server"}
    assert servers["loomkin"]["command"] == command and servers["loomkin"]["args"][0] == "--stdio"
    assert "nothing to change" in setup("cursor", "--yes").stdout

    zed = Path(os.environ["XDG_CONFIG_HOME"]) / "zed" / "settings.json"
    zed.parent.mkdir(parents=True, exist_ok=True)
    zed.write_text('// my settings\n{"theme": "One Dark"}\n')
    refused = setup("zed", "--yes")
    assert refused.returncode == 1 and "not plain JSON" in refused.stderr and '"context_servers"' in refused.stdout
    assert zed.read_text() == '// my settings\n{"theme": "One Dark"}\n'

    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}\n")
    (project / ".mcp.json").symlink_to(elsewhere)
    planted = setup("claude-code", "--yes")
    assert planted.returncode != 0 and "Traceback" not in planted.stderr, planted.stderr
    assert elsewhere.read_text() == "{}\n"
