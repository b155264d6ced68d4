"""The symbol tools through a real MCP client: pylsp and clangd where they serve, tree-sitter alone for
Elixir (a `mix new` project when mix is there) and Ruby."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mcp_types as types
import pytest

from conftest import fails, ok, serve, server_env, write_rules

pytestmark = pytest.mark.anyio

PYLSP_CONFIG = '[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }]\n'

CART = '''"""A shopping cart."""


class Cart:
    def __init__(self):
        self.items = []

    def add(self, item, count=1):
        for _ in range(count):
            self.items.append(item)
        return self

    @property
    def total(self):
        return sum(item.price for item in self.items)


def add(a, b):
    return a + b


def checkout(cart):
    def line_of(item):
        return f"{item.name}: {item.price}"

    return [line_of(item) for item in cart.items]
'''

USES = """from shop.cart import Cart


def fill(items):
    cart = Cart()
    for item in items:
        cart.add(item)
    return cart


def fill_twice(item):
    return Cart().add(item, 2)
"""


def python_project(root: Path) -> None:
    (root / ".loomkin.toml").write_text(PYLSP_CONFIG)
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "cart.py").write_text(CART)
    (root / "shop" / "use.py").write_text(USES)


async def test_python_symbols_read_find_and_references_through_pylsp(project: Path) -> None:
    python_project(project)
    async with serve(project) as session:
        overview = await ok(session, "symbol_overview", path="shop/cart.py")
        assert overview.startswith("shop/cart.py (symbols from tree-sitter):")
        for row in ("class Cart 4-15", "  method Cart/add 8-11", "  method Cart/total 14-15", "function add 18-19",
                    "function checkout 22-26", "  function checkout/line_of 23-24"):  # fmt: skip
            assert f"\n{row}" in overview, overview
        assert "items" not in overview.replace("Cart/", "")  # locals and fields of methods are left out

        found = await ok(session, "symbol_find", name_path="Cart/add", include_body=True)
        assert found == (
            "method Cart/add (shop/cart.py:8-11)\n"
            "    def add(self, item, count=1):\n"
            "        for _ in range(count):\n"
            "            self.items.append(item)\n"
            "        return self"
        )
        both = await ok(session, "symbol_find", name_path="add", path="shop")
        assert both.splitlines() == ["method Cart/add (shop/cart.py:8-11)", "function add (shop/cart.py:18-19)"]
        top = await ok(session, "symbol_find", name_path="/add", path="shop/cart.py")
        assert top == "function add (shop/cart.py:18-19)"
        children = await ok(session, "symbol_find", name_path="Cart", path="shop/cart.py", depth=1)
        assert "  method Cart/total (shop/cart.py:14-15)" in children
        assert "tot" in await ok(session, "symbol_find", name_path="Cart/tot", substring=True)
        assert (await ok(session, "symbol_find", name_path="nothing_like_it")).startswith("No symbol matches")

        references = await ok(session, "symbol_references", name_path="Cart/add", path="shop/cart.py")
        assert references.startswith("2 reference(s) to method Cart/add (shop/cart.py:8-11), found by pylsp:")
        assert "shop/use.py:7 in fill: cart.add(item)" in references
        assert "shop/use.py:12 in fill_twice: return Cart().add(item, 2)" in references

        ambiguous = await fails(session, "symbol_references", name_path="add", path="shop/cart.py")
        assert "names 2 symbols" in ambiguous and "Cart/add (shop/cart.py:8-11)" in ambiguous and "`line`" in ambiguous
        assert "is not a name path" in await fails(session, "symbol_find", name_path="a//b")


async def test_python_symbol_edits_keep_indentation_and_report_diagnostics(project: Path) -> None:
    python_project(project)
    cart = project / "shop" / "cart.py"
    async with serve(project) as session:
        replaced = await ok(
            session, "symbol_replace_body", name_path="Cart/add", path="shop/cart.py",
            body="def add(self, item, count=1):\n    self.items.extend([item] * count)\n    return self\n",
        )  # fmt: skip
        assert "+        self.items.extend([item] * count)" in replaced
        assert "pylsp" in replaced  # the fresh diagnostics of the edited file
        assert "    def add(self, item, count=1):\n        self.items.extend([item] * count)\n        return self\n\n" \
            "    @property" in cart.read_text()  # fmt: skip

        await ok(
            session, "symbol_insert_before", name_path="Cart/total", path="shop/cart.py",
            text="def clear(self):\n    self.items.clear()\n",
        )  # fmt: skip
        # PEP 8: one blank line between methods, whatever blank lines the text came with.
        cleared = "        return self\n\n    def clear(self):\n        self.items.clear()\n\n    @property\n"
        assert cleared in cart.read_text()

        await ok(
            session, "symbol_insert_after", name_path="checkout/line_of", path="shop/cart.py",
            text="\ndef unused(item):\n    return item\n",
        )  # fmt: skip
        unused = '        return f"{item.name}: {item.price}"\n\n    def unused(item):\n        return item\n'
        assert unused in cart.read_text()

        # The one `add` at the top level, picked by line; a body that does not parse is flagged.
        before = cart.read_text()
        refused = await fails(session, "symbol_replace_body", name_path="add", path="shop/cart.py", body="x")
        assert "names 2 symbols" in refused and cart.read_text() == before
        line = before.split("\n").index("def add(a, b):") + 1
        broken = await ok(
            session, "symbol_replace_body", name_path="add", path="shop/cart.py", line=line,
            body="def add(a, b):\n    return (a +\n",
        )  # fmt: skip
        assert "Warning: tree-sitter finds a syntax error" in broken
        assert "def add(a, b):\n    return (a +\n\n\ndef checkout" in cart.read_text()


async def test_symbol_edits_take_the_path_every_edit_takes(project: Path) -> None:
    python_project(project)
    write_rules(project, "# Project\n\n## Allowed Operations\n- File Write Denied: `shop/cart.py`\n")
    asked: list[str] = []

    async def decline(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="decline")

    before = (project / "shop" / "cart.py").read_text()
    async with serve(project, elicitation=decline) as session:
        denied = await fails(session, "symbol_insert_after", name_path="Cart", path="shop/cart.py", text="X = 1")
        assert "File Write Denied: shop/cart.py" in denied and asked == []
        declined = await fails(session, "symbol_insert_after", name_path="fill", path="shop/use.py", text="X = 1")
        assert "declined by the person" in declined and asked and "fill" in asked[0]
    (project / ".loomkin.toml").write_text(PYLSP_CONFIG + "[decisions]\nenforce_pre_edit = true\n")
    async with serve(project) as session:
        why = await fails(session, "symbol_replace_body", name_path="fill", path="shop/use.py", body="def fill(): pass")
        assert "enforce_pre_edit" in why and "decision_log" in why
    assert (project / "shop" / "cart.py").read_text() == before and (project / "shop" / "use.py").read_text() == USES


CPP = """#include <cstdio>

int area(int side) {
    return side * side;
}

double area(double radius) {
    return 3.14159 * radius * radius;
}

class Shape {
public:
    int sides() { return 0; }
};

int main() {
    std::printf("%d %f\\n", area(2), area(1.5));
    return Shape().sides();
}
"""


async def test_cpp_overloads_are_refused_then_picked_by_line_with_clangd(project: Path) -> None:
    (project / "geometry.cpp").write_text(CPP)
    (project / "compile_flags.txt").write_text("-std=c++17\n")
    async with serve(project) as session:
        overview = await ok(session, "symbol_overview", path="geometry.cpp")
        assert "class Shape 11-14" in overview and "  method Shape/sides 13-13" in overview
        refused = await fails(session, "symbol_replace_body", name_path="area", path="geometry.cpp", body="int x;")
        assert "names 2 symbols" in refused
        assert "function area (geometry.cpp:3-5)" in refused and "function area (geometry.cpp:7-9)" in refused
        done = await ok(
            session, "symbol_replace_body", name_path="area", path="geometry.cpp", line=8,
            body="double area(double radius) {\n    return 3.0 * radius * radius;\n}",
        )  # fmt: skip
        assert "clangd" in done
        text = (project / "geometry.cpp").read_text()
        assert "return 3.0 * radius * radius;" in text and "return side * side;" in text
        references = await ok(session, "symbol_references", name_path="Shape/sides", path="geometry.cpp")
        assert "geometry.cpp:18 in main: return Shape().sides();" in references


ACCOUNTS = """defmodule MyApp.Accounts do
  @moduledoc "Accounts."

  def get_user(id) when is_integer(id) do
    {:ok, id}
  end

  def get_user(name), do: {:ok, name}

  def get_user(name, opts) do
    {name, opts}
  end

  defp helper, do: :ok
end
"""

CALLER = """defmodule MyApp.Web do
  alias MyApp.Accounts

  def show(id), do: Accounts.get_user(id)
end
"""


def elixir_project(root: Path) -> Path:
    """A `mix new` project where mix is installed (apt's elixir), else the same files written by hand."""
    if shutil.which("mix"):
        subprocess.run(["mix", "new", "my_app"], cwd=root, check=True, capture_output=True, env=server_env())
        app = root / "my_app"
    else:
        app = root / "my_app"
        (app / "lib").mkdir(parents=True)
        (app / "mix.exs").write_text("defmodule MyApp.MixProject do\n  use Mix.Project\nend\n")
    (app / "lib" / "my_app").mkdir(exist_ok=True)
    (app / "lib" / "my_app" / "accounts.ex").write_text(ACCOUNTS)
    (app / "lib" / "my_app" / "web.ex").write_text(CALLER)
    return app


async def test_elixir_multi_clause_functions_by_tree_sitter_alone(project: Path) -> None:
    app = elixir_project(project)
    async with serve(app) as session:
        overview = await ok(session, "symbol_overview", path="lib/my_app/accounts.ex")
        assert "(symbols from tree-sitter)" in overview
        assert "  function MyApp.Accounts/get_user/1 4-8, 2 clauses" in overview
        assert "  function MyApp.Accounts/get_user/2 10-12" in overview
        every = await ok(session, "symbol_find", name_path="MyApp.Accounts/get_user", path="lib")
        assert every.splitlines() == [
            "function MyApp.Accounts/get_user/1 (lib/my_app/accounts.ex:4-8, 2 clauses)",
            "function MyApp.Accounts/get_user/2 (lib/my_app/accounts.ex:10-12)",
        ]
        assert "names 2 symbols" in await fails(
            session, "symbol_replace_body", name_path="MyApp.Accounts/get_user", path="lib/my_app/accounts.ex", body="x"
        )
        await ok(
            session, "symbol_replace_body", name_path="MyApp.Accounts/get_user/1", path="lib/my_app/accounts.ex",
            body="def get_user(id) when is_integer(id), do: {:ok, id}\ndef get_user(_), do: :error",
        )  # fmt: skip
        text = (app / "lib" / "my_app" / "accounts.ex").read_text()
        assert "  @moduledoc \"Accounts.\"\n\n  def get_user(id) when is_integer(id), do: {:ok, id}\n" \
            "  def get_user(_), do: :error\n\n  def get_user(name, opts) do\n" in text  # fmt: skip
        references = await ok(session, "symbol_references", name_path="get_user/1", path="lib/my_app/accounts.ex")
        assert "whole-word search for `get_user`" in references
        assert "lib/my_app/web.ex:4 in MyApp.Web/show/1: def show(id), do: Accounts.get_user(id)" in references
        # The caller passes one argument: it is no use of get_user/2.
        other = await ok(session, "symbol_references", name_path="get_user/2", path="lib/my_app/accounts.ex")
        assert other.startswith("No references to function MyApp.Accounts/get_user/2"), other


RUBY = """class Greeter
  def initialize(name)
    @name = name
  end

  def hello
    "Hello, #{@name}"
  end
end
"""


async def test_ruby_methods_by_tree_sitter_alone(project: Path) -> None:
    (project / "greeter.rb").write_text(RUBY)
    async with serve(project) as session:
        assert "  method Greeter/hello 6-8" in await ok(session, "symbol_overview", path="greeter.rb")
        (project / "latin1.rb").write_bytes(b"# caf\xe9\nclass Old\nend\n")
        overview = await ok(session, "symbol_overview", path=".")
        assert overview.startswith("greeter.rb:\n  class Greeter 1-9\nlatin1.rb: not read: 'latin1.rb' is not valid")
        await ok(
            session, "symbol_replace_body", name_path="Greeter/hello", path="greeter.rb",
            body='def hello(greeting = "Hello")\n  "#{greeting}, #{@name}"\nend',
        )  # fmt: skip
        assert (
            '  def hello(greeting = "Hello")\n    "#{greeting}, #{@name}"\n  end\nend\n'
            in (project / "greeter.rb").read_text()
        )


async def test_a_file_no_grammar_reads_gets_its_symbols_from_the_language_server(project: Path) -> None:
    """`.pyw` has no tree-sitter grammar here, but pylsp is told to serve it: documentSymbol gives the symbols."""
    (project / ".loomkin.toml").write_text(
        '[lsp]\nservers = [{ name = "pylsp", command = "pylsp", languages = ["python", ".pyw"] }]\n'
    )
    (project / "tool.pyw").write_text(CART)
    async with serve(project) as session:
        overview = await ok(session, "symbol_overview", path="tool.pyw")
        assert overview.startswith("tool.pyw (symbols from pylsp):")
        assert "\n  method Cart/add 8-11" in overview and "\n  function checkout/line_of 23-24" in overview
        assert "items" not in overview.replace("Cart/", "")  # a method's locals and fields are left out
        await ok(
            session, "symbol_replace_body", name_path="Cart/add", path="tool.pyw",
            body="def add(self, item, count=1):\n    self.items.extend([item] * count)\n    return self",
        )  # fmt: skip
        text = (project / "tool.pyw").read_text()
        added = "    def add(self, item, count=1):\n        self.items.extend([item] * count)\n        return self\n\n"
        assert added in text
        assert text.endswith(CART[CART.index("    @property") :])


async def test_crlf_files_stay_crlf_and_decorators_are_not_doubled(project: Path) -> None:
    (project / ".loomkin.toml").write_text('[permissions]\nauto_approve = ["symbol_*"]\n[lsp]\nenabled = false\n')
    source = (
        b"class A:\r\n    @property\r\n    def x(self):\r\n        return 1\r\n\r\n\r\ndef f():\r\n    return 2\r\n"
    )
    (project / "m.py").write_bytes(source)
    async with serve(project) as session:
        found = await ok(session, "symbol_find", name_path="A/x", include_body=True)
        assert "\r" not in found and "        return 1" in found
        # A body copied with its decorator (and CRLF breaks) replaces the decorator rather than stacking on it.
        await ok(session, "symbol_replace_body", name_path="A/x", path="m.py",
                 body="@property\r\ndef x(self):\r\n    return 3\r\n")  # fmt: skip
        await ok(session, "symbol_insert_after", name_path="f", path="m.py", text="\n\ndef g():\n    return 4\n")
        await ok(session, "symbol_insert_before", name_path="A", path="m.py", text="IMPORTANT = 1\n\n\n")
        await ok(session, "symbol_replace_body", name_path="f", path="m.py", body="def f():\n    return 5\n")
    after = (project / "m.py").read_bytes()
    assert after == (
        b"IMPORTANT = 1\r\n\r\n\r\nclass A:\r\n    @property\r\n    def x(self):\r\n        return 3\r\n\r\n\r\n"
        b"def f():\r\n    return 5\r\n\r\n\r\ndef g():\r\n    return 4\r\n"
    ), after
    assert b"\r\r" not in after and after.count(b"\n") == after.count(b"\r\n")


async def test_a_project_wide_find_sees_a_write_made_a_moment_ago(project: Path) -> None:
    (project / ".loomkin.toml").write_text("[lsp]\nenabled = false\n")
    (project / "a.py").write_text("def first():\n    return 1\n")
    async with serve(project) as session:
        assert "first" in await ok(session, "symbol_find", name_path="first")  # the index is built and watching
        for round_number in range(5):
            name = f"fresh_{round_number}"
            # Written outside the server, then asked for at once: no window where the index does not know it yet.
            (project / "a.py").write_text(f"def first():\n    return 1\n\n\ndef {name}():\n    return 2\n")
            (project / f"new_{round_number}.py").write_text(f"def other_{round_number}():\n    return {name}()\n")
            found = await ok(session, "symbol_find", name_path=name)
            assert f"function {name} (a.py:5-6)" in found, found
            assert f"other_{round_number}" in await ok(session, "symbol_find", name_path=f"other_{round_number}")


async def test_a_file_that_does_not_parse_says_where_and_uncertain_edits_are_refused(project: Path) -> None:
    (project / ".loomkin.toml").write_text('[permissions]\nauto_approve = ["symbol_*"]\n[lsp]\nenabled = false\n')
    source = "def before():\n    return 1\n\n\ndef broken(:\n    return 2\n\n\ndef after():\n    return 3\n"
    (project / "m.py").write_text(source)
    async with serve(project) as session:
        overview = await ok(session, "symbol_overview", path="m.py")
        assert "m.py does not parse: syntax error at line 5" in overview, overview
        found = await ok(session, "symbol_find", name_path="after", path="m.py")
        assert "Note: m.py does not parse: syntax error at line 5" in found, found
        refused = await fails(session, "symbol_replace_body", name_path="after", path="m.py",
                              body="def after():\n    return 4\n")  # fmt: skip
        assert "does not parse (syntax error at line 5)" in refused and "fix the syntax error first" in refused
        assert (project / "m.py").read_text() == source
        # What stands wholly before the error has a certain extent: it is edited.
        await ok(session, "symbol_replace_body", name_path="before", path="m.py", body="def before():\n    return 0\n")
    assert (project / "m.py").read_text() == source.replace("return 1", "return 0")


async def test_inserted_code_is_set_apart_as_the_language_wants(project: Path) -> None:
    (project / ".loomkin.toml").write_text('[permissions]\nauto_approve = ["symbol_*"]\n[lsp]\nenabled = false\n')
    (project / "m.py").write_text("def f():\n    return 1\n")
    (project / "lib").mkdir()
    (project / "lib" / "m.ex").write_text("defmodule M do\n  def f, do: 1\nend\n")
    async with serve(project) as session:
        # Given with no blank lines, or with too many: PEP 8's two around a top-level definition.
        await ok(session, "symbol_insert_after", name_path="f", path="m.py", text="def g():\n    return 2")
        await ok(session, "symbol_insert_before", name_path="f", path="m.py", text="\n\n\n\nX = 0\n\n\n\n")
        # `mix format`: one blank line between a module's functions.
        await ok(session, "symbol_insert_after", name_path="M/f", path="lib/m.ex", text="def g, do: 2\n")
    assert (project / "m.py").read_text() == "X = 0\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return 2\n"
    assert (project / "lib" / "m.ex").read_text() == "defmodule M do\n  def f, do: 1\n\n  def g, do: 2\nend\n"


async def test_elixir_references_without_a_server_respect_arity_and_skip_atoms_and_definitions(project: Path) -> None:
    (project / ".loomkin.toml").write_text("[lsp]\nenabled = false\n")
    (project / "lib").mkdir()
    (project / "lib" / "accounts.ex").write_text(
        "defmodule Accounts do\n"
        "  def get_user(id, opts) when is_integer(id), do: {id, opts}\n"
        "  def get_user(id, opts), do: {:error, id, opts}\n"
        "  def get_user(id, opts, extra), do: {id, opts, extra}\n"
        "end\n"
    )
    (project / "lib" / "web.ex").write_text(
        "defmodule Web do\n"
        "  def show(id) do\n"
        "    Accounts.get_user(id, [])\n"
        "    id |> Accounts.get_user([])\n"
        "    finder = &Accounts.get_user/2\n"
        "    Accounts.get_user(id, [], :extra)\n"
        "    {:get_user, [get_user: finder]}\n"
        "  end\n"
        "end\n"
    )
    async with serve(project) as session:
        found = await ok(session, "symbol_references", name_path="Accounts/get_user/2", path="lib/accounts.ex")
    assert "3 reference(s)" in found, found
    assert "lib/web.ex:3 " in found and "lib/web.ex:4 " in found and "lib/web.ex:5 " in found, found
    assert "lib/web.ex:6 " not in found and "lib/web.ex:7 " not in found and "\nlib/accounts.ex:" not in found, found
