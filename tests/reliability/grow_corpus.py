"""Grow the hostile corpus in `corpus/` with hypothesis: `python tests/reliability/grow_corpus.py`.

Each file holds hand-picked seeds plus what hypothesis composes from hostile pieces (derandomized, so a
rerun gives the same corpus; raise EXAMPLES to grow it). Placeholders are filled in by the test:
`{root}` the project, `{outside}` a directory beside it holding a canary, `{sibling}` a directory whose
name extends the project's (`proj-evil`), `{pwned}` a file in `{outside}` that must never appear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CORPUS = Path(__file__).parent / "corpus"
EXAMPLES = 400

# -- paths ---------------------------------------------------------------------------------

PATH_SEEDS = [
    "..", "../outside/secret.txt", "{outside}/secret.txt", "{sibling}/secret.txt", "{root}/../outside/secret.txt",
    "{root}-evil/secret.txt", "/", "/etc/passwd", "~", "~/.bashrc", "~root/x", "out", "out/secret.txt",
    "chain/secret.txt", "loop1", "loop1/x", "fifo", "zero", "/dev/zero", "/dev/stdin", "/proc/self/environ",
    "/proc/self/root{outside}/secret.txt", "/proc/self/cwd/../outside/secret.txt", "a.txt\x00.md", "\x00",
    "x" * 300, "d/" * 2100 + "x", ".git/config", ".git/hooks/pre-commit", ".GIT/config", "sub/.git/config",
    "src/../.git/HEAD", ".loomkin.toml", "LOOMKIN.md", ".loomkin/decisions.db", "./.loomkin.toml",
    "src/../LOOMKIN.md", "\uff0e\uff0e/outside/secret.txt", "\u2025/outside/secret.txt", "%2e%2e/outside",
    "..\\outside\\secret.txt", "file://{outside}/secret.txt", "{root}/out/secret.txt", "inlink/../../outside",
    "", " ", "\n", "a.txt/", "a.txt/.", "src/.", "./", "new/dir/file.txt", "CON", ".", "$HOME/x", "${HOME}/x",
    "zerodev", "zerodev/x", "./fifo", "inlink/../fifo",
]  # fmt: skip

PREFIXES = [
    "", "", "", "/", "./", "~/", "{root}/", "{outside}/", "{sibling}/", "{root}-evil/", "//", "/proc/self/root/",
    "/proc/self/cwd/", "/dev/", "file://", "\\\\?\\",
]  # fmt: skip
SEGMENTS = [
    "..", "..", ".", "", "a.txt", "src", "new.txt", "out", "chain", "loop1", "fifo", "zero", "inlink", ".git",
    ".GIT", ".Git", "HEAD", "config", "hooks", ".loomkin", "LOOMKIN.md", "loomkin.md", ".loomkin.toml",
    ".LOOMKIN.TOML", "secret.txt", "outside", "proj", "proj-evil", "x" * 256, "\u2025", "\uff0e\uff0e", "%2e%2e",
    "..\\", "\\..", "...", ".. ", " ..", "e\u0301", "\uff2c\uff2f\uff2f\uff2d\uff2b\uff29\uff2e.md", ".git\u200b",
    "a\x00b", "\u202e", "\ud7ff", "~",
]  # fmt: skip
SUFFIXES = ["", "", "/", "/.", "/..", "\x00"]

paths = st.builds(
    lambda prefix, segments, suffix: prefix + "/".join(segments) + suffix,
    st.sampled_from(PREFIXES),
    st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=6),
    st.sampled_from(SUFFIXES),
)

# -- shell ---------------------------------------------------------------------------------

SHELL_SEEDS = [
    "touch {pwned}", "/usr/bin/touch {pwned}", "./touch {pwned}", "sh -c 'touch {pwned}'", "env touch {pwned}",
    "FOO=1 echo hi", "IFS=, echo hi", "echo $HOME", "echo ${IFS}x", "echo ~", "echo *", "ls *", "ls ..",
    "echo {a,b}", "echo hi > {pwned}", "echo hi >> {pwned}", "echo hi 2> {pwned}", "echo hi &> {pwned}",
    "echo hi < /etc/passwd", "echo 'unclosed", 'echo "unclosed', "echo \\", "", " ", "\t", "echo hi\x00touch x",
    "git -c core.pager='touch {pwned}' log", "git -c alias.x='!touch {pwned}' x",
    "git --upload-pack='touch {pwned}' fetch",
    "git -C {outside} status", "git --git-dir={outside} status", "git --work-tree={outside} status",
    "git --exec-path={outside} status", "git --config-env=core.pager=HOME log", "git log --output={pwned}",
    "git log --outp={pwned}", "git diff --ext-diff", "git status --porcelain", "git log --format=%H",
    "git log -p --ext-diff", "git log --textconv", "git log -O{pwned}", "echo hi #; touch {pwned}",
    "git fetch https://example.invalid/repo", "git ls-remote ext::sh", "git log https://example.invalid/x",
    "git log --remotes", "curl https://example.invalid",
]  # fmt: skip

BASES = ["echo hi", "ls", "git status", "git log --oneline", "cat a.txt", "echo"]
JOINERS = [";", " ; ", "&&", " && ", "||", "|", " | ", "&", "\n", "\r", "\r\n", "\t;", " $(", " `", " >", ">>", " <",
           " 2>", " &>", " ${IFS}", " $'\\n'", "\\;", " #", "\x00"]  # fmt: skip
PAYLOADS = [
    "touch {pwned}", "sh -c 'touch {pwned}'", "rm -rf {outside}", "python3 -c 'open(\"{pwned}\",\"w\")'", "id",
    "cat {outside}/secret.txt", "{pwned}", "$(touch {pwned})", "`touch {pwned}`", "git -c core.pager=id log",
]  # fmt: skip
CLOSERS = ["", "", ")", "`", "'", '"', " #"]
QUOTES = ["", "", '"', "'"]


def _quoted(quote: str, text: str) -> str:
    return f"{quote}{text}{quote}" if quote else text


shell_commands = st.one_of(
    st.builds(
        lambda base, joiner, payload, closer, quote: base + " " * (quote != "") + _quoted(quote, joiner + payload)
        + closer,
        st.sampled_from(BASES), st.sampled_from(JOINERS), st.sampled_from(PAYLOADS), st.sampled_from(CLOSERS),
        st.sampled_from(QUOTES),
    ),
    # Environment and glob tricks in front of, or as arguments of, an allowed command.
    st.builds(
        lambda trick, base: trick.replace("CMD", base),
        st.sampled_from(["X=1 CMD", "CMD $X", "CMD ${X}", "CMD ~", "CMD *", "CMD ?", "CMD [a]", "CMD {a,b}",
                         "CMD ~/.ssh", "CMD $(id)", "exec CMD", "command CMD", "nohup CMD", "CMD\\\ntouch x"]),
        st.sampled_from(BASES),
    ),
)  # fmt: skip

# -- git arguments -------------------------------------------------------------------------

GIT_VALUES = [
    "--output={pwned}", "-c", "core.pager=touch {pwned}", "--upload-pack=touch {pwned}", "--exec=touch {pwned}",
    "-O{pwned}", "--ext-diff", "--textconv", "--git-dir={outside}", "--work-tree={outside}", "-C{outside}",
    "{outside}/secret.txt", "../outside/secret.txt", ":(top)../outside", ":/", ":!*", "HEAD:../../outside",
    "@{-1}", "HEAD~1", "$(touch {pwned})", "`touch {pwned}`", "a\nb", "a\x00b", "-p", "--all", "--", "-",
    "HEAD --output={pwned}", "..", "...", "HEAD..--output={pwned}", "refs/../../outside", "x" * 5000, "out/secret.txt",
    ".git/config", "~/x", "--amend", "--no-verify", "-m", "--template={outside}",
    "--pathspec-from-file={outside}/secret.txt",
]  # fmt: skip
GIT_FIELDS = {"paths": ["status", "diff", "log", "show", "add", "reset"], "ref": ["diff", "log", "show", "reset"],
              "message": ["commit", "stash"]}  # fmt: skip


def _git_call(field: str, operation: str, value: str) -> dict[str, Any]:
    args: dict[str, Any] = {field: [value] if field == "paths" else value}
    return {"operation": operation, "args": args | ({"action": "push"} if operation == "stash" else {})}


git_calls = st.sampled_from(sorted(GIT_FIELDS)).flatmap(
    lambda field: st.builds(_git_call, st.just(field), st.sampled_from(GIT_FIELDS[field]), st.sampled_from(GIT_VALUES))
)


# -- JSON-RPC messages ------------------------------------------------------------------------

PROTOCOL_SEEDS = [
    "not json at all", "{", '{"jsonrpc": "2.0"', "[]", "[1, 2, 3]", '{"jsonrpc": "2.0", "id": 1}',
    '{"jsonrpc": "1.0", "id": 2, "method": "tools/list"}', '{"jsonrpc": "2.0", "id": 3, "method": "no/such/method"}',
    '{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": "a string"}',
    '{"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": 42}}',
    '{"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "file_read", "arguments": [1]}}',
    '{"jsonrpc": "2.0", "id": {"nested": true}, "method": "tools/list"}',
    '{"jsonrpc": "2.0", "id": 8, "method": "resources/read", "params": {"uri": "loomkin://nope"}}',
    "\x00\x01\x02 binary noise \xff",
    '{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 999}}',
]  # fmt: skip
METHODS = [
    "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/read", "resources/subscribe",
    "resources/unsubscribe", "resources/templates/list", "prompts/list", "prompts/get", "logging/setLevel",
    "completion/complete", "notifications/initialized", "notifications/cancelled", "notifications/progress",
    "notifications/roots/list_changed", "sampling/createMessage", "elicitation/create", "roots/list", "no/such",
    "", "tools/call/", "TOOLS/LIST",
]  # fmt: skip
TOOL_NAMES = [
    "file_read", "file_write", "file_edit", "file_search", "content_search", "directory_list", "shell", "git",
    "repo_map", "project_context", "decision_log", "decision_query", "lsp_diagnostics", "lsp_hover", "nope__x", "",
]  # fmt: skip
ARGUMENT_NAMES = ["file_path", "content", "old_string", "new_string", "pattern", "path", "command", "operation",
                  "args", "offset", "limit", "timeout", "max_tokens", "node_type", "title", "query_type"]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)  # fmt: skip
tool_params = st.fixed_dictionaries(
    {"name": st.sampled_from(TOOL_NAMES) | json_values},
    optional={"arguments": st.dictionaries(st.sampled_from(ARGUMENT_NAMES), json_values, max_size=4) | json_values},
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2, None]),
        "id": st.integers(-1000, 1000) | st.text(max_size=6) | json_values,
        "method": st.sampled_from(METHODS) | json_values,
        "params": tool_params | json_values,
        "result": json_values,
        "error": json_values,
    },
)
# Well-formed requests with hostile params reach further than broken envelopes: half the corpus.
requests = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "id": st.integers(1, 10**6), "method": st.sampled_from(METHODS)},
    optional={"params": tool_params | json_values},
)
protocol_messages = st.one_of(
    requests.map(json.dumps),
    requests.map(json.dumps),
    requests.map(json.dumps),
    envelopes.map(json.dumps),
    st.lists(envelopes, min_size=1, max_size=3).map(json.dumps),  # batches, which MCP no longer allows
    st.tuples(envelopes.map(json.dumps), st.floats(0.1, 0.9)).map(lambda cut: cut[0][: int(len(cut[0]) * cut[1])]),
)

# -- configuration bombs and huge inputs (hand-picked: sizes, not shapes, are the point) -----------

MB = 1024 * 1024
# `.loomkin.toml` as [text, times] parts (then `numbered` [text with {n}, count]), or a special file in its
# place; `bytes` parts are latin-1.
TOML_BOMBS = [
    {"name": "arrays nested 1,000 deep", "parts": [["a = ", 1], ["[", 1000], ["]", 1000]]},
    {"name": "arrays nested 100,000 deep", "parts": [["a = ", 1], ["[", 100_000], ["]", 100_000]]},
    {"name": "inline tables nested 1,000 deep", "parts": [["a = ", 1], ["{b = ", 1000], ["1", 1], ["}", 1000]]},
    {"name": "inline tables nested 100,000 deep", "parts": [["a = ", 1], ["{b=", 100_000], ["1", 1], ["}", 100_000]]},
    {"name": "dotted key of 1,001 parts", "parts": [["a.", 1000], ["a = 1", 1]]},
    {"name": "dotted key of 100,000 parts", "parts": [["a.", 100_000], ["a = 1", 1]]},
    {"name": "table header of 100,000 parts", "parts": [["[", 1], ["a.", 99_999], ["a]", 1]]},
    {"name": "100,000 arrays of tables", "parts": [["[[a]]\n", 100_000]]},
    {"name": "50,000 keys", "parts": [["[permissions]\n", 1]], "numbered": ["k{n} = 1\n", 50_000]},
    {"name": "5,000 language servers", "parts": [], "numbered": ["[lsp.servers.s{n}]\ncommand = ['true']\n", 5000]},
    {"name": "integer of 5,000 digits", "parts": [["a = ", 1], ["9", 5000]]},
    {"name": "float of 100,000 digits", "parts": [["a = 1.", 1], ["5", 100_000]]},
    {"name": "string of 900 KB of escapes", "parts": [['a = "', 1], ["\\u0041", 150_000], ['"', 1]]},
    {"name": "string of 2 MB", "parts": [['a = "', 1], ["x", 2 * MB], ['"', 1]]},
    {"name": "200 MB of comments", "parts": [["# bomb\n", 30 * MB]]},
    {"name": "invalid UTF-8", "parts": [["a = '\xff\xfe'", 1]], "bytes": True},
    {"name": "NUL byte", "parts": [["a = 1\u0000", 1]]},
    {"name": "byte order mark", "parts": [["\ufeff[lsp]\nenabled = false\n", 1]]},
    {"name": "a FIFO", "special": "fifo"},
    {"name": "a directory", "special": "directory"},
    {"name": "a symlink to /dev/zero", "special": "/dev/zero"},
    {"name": "a symlink to /dev/urandom", "special": "/dev/urandom"},
]
# Calls with huge arguments or on huge files. {"repeat": s, "times": n} stands for s * n. Files: `big.txt`
# (10 MB), `huge.log` and `huge.py` (1 GB: 1,000 text lines, then a sparse hole), `crowd/` (20,000 files).
TEN_MB = {"repeat": "0123456789abcde\n", "times": 10 * MB // 16}
BIG_CALLS = [
    {"tool": "file_write", "args": {"file_path": "w.txt", "content": TEN_MB}, "expect": "handled"},
    {"tool": "file_write", "args": {"file_path": "w.txt", "content": {"repeat": "x", "times": 65 * MB}},
     "expect": "refused"},
    {"tool": "file_edit", "args": {"file_path": "big.txt", "old_string": TEN_MB, "new_string": "small\n"},
     "expect": "handled"},
    {"tool": "file_edit", "args": {"file_path": "a.txt", "old_string": "alpha", "new_string": TEN_MB},
     "expect": "handled"},
    {"tool": "file_edit", "args": {"file_path": "a.txt", "old_string": {"repeat": "zq", "times": 5 * MB},
     "new_string": "x"}, "expect": "refused"},
    {"tool": "file_edit", "args": {"file_path": "src/m.py", "old_string": "x = 1\n",
     "new_string": {"repeat": "y = 2\n", "times": 2 * MB}}, "expect": "handled"},
    {"tool": "file_read", "args": {"file_path": "huge.log"}, "expect": "handled"},
    {"tool": "file_read", "args": {"file_path": "huge.log", "offset": 1001}, "expect": "handled"},
    {"tool": "file_read", "args": {"file_path": "huge.log", "offset": 1002}, "expect": "refused"},
    {"tool": "file_read", "args": {"file_path": "huge.log", "offset": 50_000_000}, "expect": "refused"},
    {"tool": "file_read", "args": {"file_path": "huge.py"}, "expect": "handled"},
    {"tool": "file_edit", "args": {"file_path": "huge.log", "old_string": "line 1", "new_string": "x"},
     "expect": "refused"},
    {"tool": "content_search", "args": {"pattern": "line 99"}, "expect": "handled"},
    {"tool": "file_search", "args": {"pattern": "**/*"}, "expect": "handled"},
    {"tool": "directory_list", "args": {"path": "crowd"}, "expect": "handled"},
    {"tool": "lsp_diagnostics", "args": {"file_path": "huge.py"}, "expect": "refused"},
    {"tool": "repo_map", "args": {}, "expect": "handled"},
    {"tool": "git", "args": {"operation": "status"}, "expect": "handled"},
]  # fmt: skip


def grow(strategy: st.SearchStrategy[Any], seeds: list[Any], examples: int = EXAMPLES) -> list[Any]:
    """The seeds, then every distinct example hypothesis draws from `strategy`."""
    found = list(seeds)
    seen = {json.dumps(seed, sort_keys=True) for seed in seeds}

    @settings(max_examples=examples, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Any) -> None:
        key = json.dumps(example, sort_keys=True)
        if key not in seen:
            seen.add(key)
            found.append(example)

    collect()
    return found


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    grown: list[tuple[str, st.SearchStrategy[Any] | None, list[Any]]] = [
        ("paths", paths, PATH_SEEDS),
        ("shell", shell_commands, SHELL_SEEDS),
        ("git", git_calls, []),
        ("protocol", protocol_messages, PROTOCOL_SEEDS),
        ("toml", None, TOML_BOMBS),
        ("big", None, BIG_CALLS),
    ]
    for name, strategy, seeds in grown:
        cases = seeds if strategy is None else grow(strategy, seeds)
        lines = ",\n".join(json.dumps(case, ensure_ascii=True) for case in cases)
        (CORPUS / f"{name}.json").write_text(f"[\n{lines}\n]\n")
        print(f"{name}: {len(cases)} cases")


if __name__ == "__main__":
    main()
