"""`.loomkin.toml`, the environment, and the `loomkin-mcp` command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from loomkin_mcp.config import LoomkinConfig, load_settings, parse_config

from conftest import DATA, LOOMKIN, ok, serve, server_env

SEED = DATA / "seed-full.loomkin.toml"


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [LOOMKIN, *args], cwd=cwd, capture_output=True, text=True, timeout=60, input=stdin, env=server_env(env)
    )


def test_the_seed_example_loads_with_every_section() -> None:
    config = parse_config(SEED)
    assert config.model.architect == "anthropic:claude-opus-4-6"
    assert config.permissions.auto_approve == ["file_read", "file_search", "content_search", "directory_list"]
    assert config.context.max_repo_map_tokens == 2048
    assert config.decisions.auto_log_commits is True
    assert [s.name for s in config.mcp.servers] == ["tidewave", "hexdocs"]
    assert config.mcp.servers[0].args == ["tidewave.server"] and config.mcp.servers[1].url.endswith("/sse")
    assert config.lsp.servers[0].command == "elixir-ls"
    assert config.teams.budget.max_per_team_usd == 5.0 and config.teams.max_concurrent_teams == 3
    endpoints = config.provider.endpoints
    assert set(endpoints) == {"ollama", "vllm", "sglang", "lms", "exo", "litellm"}
    assert endpoints["vllm"].auth_key.get_secret_value() == "your-api-key"
    assert "your-api-key" not in repr(config)


def test_defaults_serve_without_a_config_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    assert settings.path is None and settings.requested == LoomkinConfig()
    assert settings.env.port == 4200 and settings.env.database_url is None
    env = load_settings(tmp_path, environ={"PORT": "5000", "DATABASE_URL": "postgresql://x/y"}).env
    assert env.port == 5000 and env.database_url.get_secret_value() == "postgresql://x/y"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[teams.budget]\nmax_per_team_usd = "five"\n',
            '[teams.budget] max_per_team_usd: expected a number, got "five"',
        ),
        ("[teams]\nmax_agents_per_team = 2.5\n", "[teams] max_agents_per_team: expected an integer, got 2.5"),
        ('[decisions]\nenabled = "yes"\n', '[decisions] enabled: expected true or false, got "yes"'),
        ('[permissions]\nauto_approve = "file_read"\n', "[permissions] auto_approve: expected a list"),
        ('[mcp]\nservers = [{ name = "x" }]\n', "[mcp] servers[0]: give exactly one of `command`"),
        (
            '[mcp]\nservers = [{ name = "a", command = "x" }, { name = "b", command = 3 }]\n',
            "[mcp] servers[1].command: expected a string, got 3",
        ),
        ('[lsp]\nservers = [{ name = "pylsp" }]\n', "[lsp] servers[0].command: this key is required"),
        ("[context]\nmax_repo_map_tokens = -1\n", "[context] max_repo_map_tokens: expected greater than or equal"),
        (
            '[provider.endpoints]\nvllm = { url = "localhost:8000" }\n',
            "[provider.endpoints.vllm] url: expected an http:// or https:// URL",
        ),
        ("[model]\ndefault = \n", ":2:11: invalid TOML at line 2, column 11"),
        ("[model\n", "invalid TOML at line 1"),
        ("model = 3\n", "model: expected a table, got 3"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, body: str, expected: str) -> None:
    (tmp_path / ".loomkin.toml").write_text(body)
    done = run_cli("--stdio", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(tmp_path / ".loomkin.toml") in lines[0] and expected in lines[0], lines[0]


def test_bad_environment_and_missing_config_file_exit_2(tmp_path: Path) -> None:
    done = run_cli("--stdio", cwd=tmp_path, env={"PORT": "http"})
    assert done.returncode == 2 and "environment variable PORT: expected an integer" in done.stderr
    done = run_cli("--stdio", "--config", "nope.toml", cwd=tmp_path)
    assert done.returncode == 2 and "config file not found" in done.stderr
    done = run_cli("--stdio", "--root", str(tmp_path / "missing"), cwd=tmp_path)
    assert done.returncode == 2 and "no such directory" in done.stderr


def test_server_enabled_false_refuses_to_serve(tmp_path: Path) -> None:
    (tmp_path / ".loomkin.toml").write_text("[mcp]\nserver_enabled = false\n")
    done = run_cli("--stdio", cwd=tmp_path)
    assert done.returncode == 2
    assert "`[mcp] server_enabled = false`" in done.stderr and "set it to true" in done.stderr


def test_unknown_keys_warn_once_each_and_still_serve(tmp_path: Path) -> None:
    (tmp_path / ".loomkin.toml").write_text("[teams]\nmax_agent = 1\n[nonsense]\nx = 1\n")
    done = run_cli("tools", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "unknown key" in line]
    assert len(warnings) == 2
    assert any("[teams] max_agent" in w for w in warnings) and any("[nonsense]" in w for w in warnings)


@pytest.mark.anyio
async def test_server_starts_with_the_seed_config(project: Path) -> None:
    async with serve(project, "--config", str(SEED)) as session:
        assert "directory_list" in {tool.name for tool in (await session.list_tools()).tools}
        await ok(session, "directory_list")


def test_init_writes_the_starter_and_never_overwrites(tmp_path: Path) -> None:
    done = run_cli("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = (tmp_path / ".loomkin.toml").read_text()
    assert "[permissions]" in written and parse_config(tmp_path / ".loomkin.toml") == LoomkinConfig()

    (tmp_path / ".loomkin.toml").write_text("# mine\n")
    again = run_cli("init", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    assert (tmp_path / ".loomkin.toml").read_text() == "# mine\n"
    assert run_cli("init", "--force", cwd=tmp_path).returncode == 0
    assert (tmp_path / ".loomkin.toml").read_text() == written


def test_version_help_tools_and_call(tmp_path: Path) -> None:
    assert run_cli("--version", cwd=tmp_path).stdout.startswith("loomkin-mcp ")
    help_text = run_cli("--help", cwd=tmp_path).stdout
    for word in ("--stdio", "--root", "--config", "--log-level", "init", "tools", "call"):
        assert word in help_text

    tools = run_cli("tools", cwd=tmp_path).stdout
    assert "file_read" in tools and "read-only" in tools and "git" in tools

    (tmp_path / "hello.txt").write_text("hi there\n")
    done = run_cli("call", "file_read", '{"file_path": "hello.txt"}', cwd=tmp_path)
    assert done.returncode == 0 and "hi there" in done.stdout
    refused = run_cli("call", "file_read", '{"file_path": "../x"}', cwd=tmp_path)
    assert refused.returncode == 1 and "outside the project" in refused.stderr
    bad_json = run_cli("call", "file_read", "{nope", cwd=tmp_path)
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    written = run_cli("call", "file_write", '{"file_path": "new.txt", "content": "x"}', cwd=tmp_path)
    assert written.returncode == 0 and (tmp_path / "new.txt").read_text() == "x"


def test_serving_never_takes_the_filesystem_root_for_the_project(tmp_path: Path) -> None:
    # Each client is served its own first root instead (test_roots); one that declares none is refused.
    done = run_cli("--stdio", cwd=Path("/"))
    assert "the current directory / is not served because it is a system directory" in done.stderr
    assert "pass --root" in done.stderr


def test_the_readme_config_examples_load(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in readme.split("```toml\n")[1:]]
    assert blocks
    for block in blocks:
        (tmp_path / "example.toml").write_text(block)
        parse_config(tmp_path / "example.toml")


def test_root_and_config_work_before_or_after_the_command(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "README.md").write_text("the project's own readme\n")
    (elsewhere / "README.md").write_text("not this one\n")
    for args in (
        ("--root", str(project), "call", "file_read", '{"file_path": "README.md"}'),
        ("call", "--root", str(project), "file_read", '{"file_path": "README.md"}'),
    ):
        done = run_cli(*args, cwd=elsewhere)
        assert done.returncode == 0 and "the project's own readme" in done.stdout, (args, done.stdout, done.stderr)
    run_cli("--root", str(project), "doctor", "--json", cwd=elsewhere)
    # The decision store check opened the project's store, not one in the current directory.
    assert (project / ".loomkin" / "decisions.db").exists() and not (elsewhere / ".loomkin").exists()
    config = tmp_path / "mine.toml"
    config.write_text("[context]\nmax_repo_map_tokens = 64\n")
    (project / "a.py").write_text("def f():\n    return 1\n")
    mapped = run_cli("--root", str(project), "--config", str(config), "repo-map", cwd=elsewhere)
    assert mapped.returncode == 0 and "a.py" in mapped.stdout and "of 64 tokens" in mapped.stdout, mapped.stdout
    assert not (elsewhere / ".loomkin").exists()
    # Reading a Python file cues its language server in the background; the one-shot call ends before that
    # runs, and must leave no coroutine unawaited behind.
    read = run_cli("--root", str(project), "call", "file_read", '{"file_path": "a.py"}', cwd=elsewhere)
    assert read.returncode == 0 and "never awaited" not in read.stderr, read.stderr
    assert " INFO " not in read.stderr  # a command in a terminal logs warnings and errors only


def test_a_database_url_of_another_kind_is_named_not_ignored(tmp_path: Path) -> None:
    done = run_cli(
        "call", "decision_query", '{"query_type": "pulse"}', cwd=tmp_path, env={"DATABASE_URL": "mysql://u:pw@db/x"}
    )
    assert done.returncode == 0 and "Decision graph pulse" in done.stdout
    assert "DATABASE_URL is a mysql: URL" in done.stderr and "SQLite" in done.stderr and "pw" not in done.stderr


def test_small_command_line_promises(tmp_path: Path) -> None:
    config = run_cli("editor-config", "cursor", cwd=tmp_path)
    assert json.loads(config.stdout)["mcpServers"]["loomkin"]["args"] == ["--stdio", "--root", "${workspaceFolder}"]
    assert config.stderr.startswith("Merge this into .cursor/mcp.json in the project")
    graph = run_cli("decisions", cwd=tmp_path)
    assert graph.returncode == 0 and graph.stdout.startswith("flowchart"), graph.stderr


def test_doctor_shows_a_misspelt_key_or_section_with_the_nearest_name(tmp_path: Path) -> None:
    (tmp_path / ".loomkin.toml").write_text("[lps]\nenabled = false\n[lsp]\nenabeld = false\n")
    done = run_cli("doctor", "--json", cwd=tmp_path)
    checks = {check["name"]: check for check in json.loads(done.stdout)}
    config = checks["config"]
    assert config["ok"] is False, config
    assert (
        "[lps] (did you mean [lsp]?)" in config["detail"]
        and "[lsp] enabeld (did you mean enabled?)" in config["detail"]
    ), config
    warnings = [line for line in done.stderr.splitlines() if "unknown key" in line]
    assert any("did you mean [lsp]?" in line for line in warnings), done.stderr


def test_cli_messages_say_what_is_true(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def main():\n    return 1\n")
    (tmp_path / "LOOMKIN.md").write_text("## Allowed Operations\n- Shell: `make *`\n")
    a_file = run_cli("--root", str(tmp_path / "app.py"), "tools", cwd=tmp_path)
    assert a_file.returncode == 2 and "is a file, not a directory" in a_file.stderr, a_file.stderr
    negative = run_cli("repo-map", "--tokens", "-5", cwd=tmp_path)
    assert negative.returncode == 2 and "-5 is not a whole number above zero" in negative.stderr, negative.stderr
    missing = run_cli("repo-map", "--focus", "missing.py", cwd=tmp_path)
    assert missing.returncode == 2 and "--focus missing.py: no such file" in missing.stderr, missing.stderr
    doctor = json.loads(run_cli("doctor", "--json", cwd=tmp_path).stdout)
    rules = next(check for check in doctor if check["name"] == "LOOMKIN.md")
    assert "1 enforced permission and 0 other instructions;" in rules["detail"], rules
    assert "1 item held back" in json.dumps(doctor), doctor


def test_help_says_how_to_list_the_tools_and_tools_line_up(tmp_path: Path) -> None:
    helped = run_cli("--help", cwd=tmp_path).stdout
    assert "`loomkin-mcp tools` lists them all" in helped and "[COMMAND] ..." in helped, helped
    listed = run_cli("tools", cwd=tmp_path).stdout.splitlines()
    assert len(listed) > 20 and any(line.startswith("symbol_insert_before ") for line in listed)
    columns = {min(line.find(kind) for kind in ("read-only", "changes things") if kind in line) for line in listed}
    assert len(columns) == 1, listed
