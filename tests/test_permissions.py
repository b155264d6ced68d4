"""Tools that change things ask the person through elicitation, unless auto-approved."""

from __future__ import annotations

from pathlib import Path

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from conftest import LOOMKIN, fails, ok, serve, server_env, text_of, write_rules

pytestmark = pytest.mark.anyio


class Person:
    """Answers elicitation requests the way a person in the editor would, and remembers them."""

    def __init__(self, action: str, approve: bool = True) -> None:
        self.action = action
        self.approve = approve
        self.asked: list[str] = []

    async def __call__(self, context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params.message)
        content = {"approve": self.approve} if self.action == "accept" else None
        return types.ElicitResult(action=self.action, content=content)


async def test_accept_runs_and_decline_refuses(project: Path) -> None:
    (project / "a.txt").write_text("old\n")
    accepting = Person("accept")
    async with serve(project, elicitation=accepting) as session:
        await ok(session, "file_write", file_path="a.txt", content="new\n")
        await ok(session, "file_read", file_path="a.txt")
    assert (project / "a.txt").read_text() == "new\n"
    assert accepting.asked == ["Allow file_write to write 4 characters to a.txt?"]

    for person in (Person("decline"), Person("cancel"), Person("accept", approve=False)):
        async with serve(project, elicitation=person) as session:
            message = await fails(session, "file_write", file_path="a.txt", content="declined\n")
            assert "by the person" in message and "nothing was written" in message
            await fails(session, "file_edit", file_path="a.txt", old_string="new", new_string="x")
        assert (project / "a.txt").read_text() == "new\n"
        assert len(person.asked) == 2


async def test_auto_approve_and_read_only_operations_do_not_ask(project: Path) -> None:
    (project / ".loomkin.toml").write_text('[permissions]\nauto_approve = ["file_*", "directory_list"]\n')
    write_rules(project, "## Allowed Operations\n- Shell: `echo *`\n")
    person = Person("decline")
    async with serve(project, elicitation=person) as session:
        await ok(session, "file_write", file_path="b.txt", content="auto\n")
        await ok(session, "file_edit", file_path="b.txt", old_string="auto", new_string="edited")
        await fails(session, "git", operation="status")  # read-only: not asked (fails: no repository)
        assert person.asked == []
        await fails(session, "shell", command="echo hi")
        assert person.asked == ["Allow shell to run `echo hi`?"]
        # A command the rules refuse is refused before anyone is asked.
        await fails(session, "shell", command="rm -rf /")
        assert len(person.asked) == 1
    assert (project / "b.txt").read_text() == "edited\n"


async def test_without_elicitation_the_client_governs(project: Path) -> None:
    async with serve(project) as session:
        await ok(session, "file_write", file_path="c.txt", content="client approved\n")
    assert (project / "c.txt").exists()


async def test_elicitation_on_the_2026_protocol(project: Path) -> None:
    declining = Person("decline")
    params = StdioServerParameters(command=LOOMKIN, args=["--stdio", "--root", str(project)], env=server_env())
    async with Client(params, elicitation_callback=declining) as client:
        assert client.session.protocol_version == "2026-07-28"
        refused = await client.call_tool("file_write", {"file_path": "d.txt", "content": "x"})
        assert refused.is_error and "declined" in text_of(refused)
    assert not (project / "d.txt").exists()

    accepting = Person("accept")
    async with Client(params, elicitation_callback=accepting) as client:
        done = await client.call_tool("file_write", {"file_path": "d.txt", "content": "x"})
        assert not done.is_error, text_of(done)
    assert (project / "d.txt").read_text() == "x"
    assert declining.asked and accepting.asked
