"""Read `.loomkin.toml` and the environment into validated models, with one-line errors."""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import tomli
from pydantic import BaseModel, ValidationError

from .._errors import ConfigError
from .._fs import OwnFileRefused, read_own_file
from ._models import Environment, LoomkinConfig

CONFIG_FILENAME = ".loomkin.toml"
USER_CONFIG_FILENAME = "loomkin.toml"
# A real config is a few KB; anything this big is the wrong file (or a bomb) and is not read.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_UNKNOWN_KEY_WARNINGS = 10

logger = logging.getLogger("loomkin_mcp.config")

# What a person should read for pydantic's error types, keyed by type.
_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


@dataclass(frozen=True)
class Settings:
    """Everything loaded at start-up: the person's config, the project's, and the environment.

    The two files stay apart: what the project's own file asks for may be held back until the
    person trusts it (`workspace.Trust` decides, and gives the config in force).
    """

    user: dict[str, Any]
    """The person's own config (`$XDG_CONFIG_HOME/loomkin/loomkin.toml`, or a `--config` outside the
    project), validated; always trusted."""
    project: dict[str, Any]
    """The project's `.loomkin.toml`, validated; `{}` when there is none."""
    env: Environment
    path: Path | None
    """The project's config file that was read, or None."""
    user_path: Path | None = None
    """The person's config file that was read, or None."""

    @cached_property
    def requested(self) -> LoomkinConfig:
        """Both files merged: everything the project asks for, before trust holds anything back."""
        return LoomkinConfig.model_validate(merge_configs(self.user, self.project))


def user_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/loomkin/loomkin.toml` (default `~/.config/loomkin/loomkin.toml`)."""
    return user_config_dir(environ) / USER_CONFIG_FILENAME


def xdg_home(variable: str, below_home: str, environ: Mapping[str, str] | None = None) -> Path:
    """An XDG base directory of the person's: `$XDG_CONFIG_HOME` and its kin, else its default under the home
    (`.config`, `.cache`, `.local/state`)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(variable) or os.path.join(environ.get("HOME") or os.path.expanduser("~"), below_home))


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    return xdg_home("XDG_CONFIG_HOME", ".config", environ) / "loomkin"


def inside_project(path: Path, root: Path) -> bool:
    """Whether `path` (followed through links, as far as it exists) is the project root or under it."""
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return real == top or real.is_relative_to(top)


def load_settings(root: Path, config_path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load the person's config, then `config_path` (default `<root>/.loomkin.toml`; absent is fine).

    A `--config` file outside the project is the person's own: it joins their user-level config.

    Raises:
        ConfigError: with one line naming the file, the key path and what was expected.
    """
    environ = os.environ if environ is None else environ
    env = load_environment(environ)
    user_path: Path | None = user_config_path(environ)
    if user_path is not None and inside_project(user_path, root):
        # The project's own files could then grant themselves anything: never the person's config.
        logger.warning(
            "%s is inside the project, so it is not read as your own config; set XDG_CONFIG_HOME outside it.", user_path
        )
        user_path = None
    user = read_config(user_path) if user_path is not None and os.path.lexists(user_path) else None
    if user is None:
        user_path = None
    if config_path is not None and not os.path.lexists(config_path):
        raise ConfigError(f"{config_path}: config file not found; check the --config path.")
    if config_path is not None and not Path(os.path.realpath(config_path)).is_relative_to(os.path.realpath(root)):
        own = read_config(config_path, None)
        user = merge_configs(user or {}, own)
        return Settings(user=user, project={}, env=env, path=None, user_path=config_path)
    path = config_path or root / CONFIG_FILENAME
    project = read_config(path, root) if os.path.lexists(path) else None
    return Settings(user=user or {}, project=project or {}, env=env, path=path if project is not None else None,
                    user_path=user_path)  # fmt: skip


def parse_config(path: Path) -> LoomkinConfig:
    """`path` read and validated on its own (unknown keys are warned about)."""
    return LoomkinConfig.model_validate(read_config(path, None))


def read_config(path: Path, root: Path | None = None) -> dict[str, Any]:
    """The TOML table of `path`, validated against the models; `root` keeps it inside the project."""
    try:
        found = read_own_file(path, Path(os.path.realpath(root or "/")), MAX_CONFIG_BYTES)
    except OwnFileRefused as exc:
        # A FIFO would block the start-up forever; a device or directory is never a config.
        raise ConfigError(f"{path}: {exc}; point to a regular TOML file.") from None
    if found is None:
        raise ConfigError(f"{path}: config file not found; check the path.")
    if found.truncated:
        raise ConfigError(f"{path}: over {MAX_CONFIG_BYTES >> 20} MB, too big to be a config; check the file.")
    try:
        text = found.data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8; save it as UTF-8 text.") from None
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid TOML at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None
    except RecursionError as exc:
        # tomli's own nesting limits (arrays, inline tables, dotted keys) surface as RecursionError.
        raise ConfigError(f"{path}: invalid TOML: {exc}; flatten it.") from None
    except ValueError:
        # Python refuses to convert integers of more than 4,300 digits.
        raise ConfigError(f"{path}: invalid TOML: a number has too many digits; shorten it.") from None
    try:
        config = LoomkinConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc.errors()[0])}") from None
    unknown = unknown_keys(config)
    for key in unknown[:MAX_UNKNOWN_KEY_WARNINGS]:
        logger.warning("%s: unknown key %s is ignored; correct it, or see the config reference.", path, key)
    if len(unknown) > MAX_UNKNOWN_KEY_WARNINGS:
        logger.warning("%s: %d more unknown keys are ignored.", path, len(unknown) - MAX_UNKNOWN_KEY_WARNINGS)
    return data


# Lists of named entries join across the two files (the project's entry wins over the person's of
# the same name); auto-approvals join; every other value in the project's file replaces the person's.
_NAMED_LISTS = {("mcp", "servers"), ("lsp", "servers")}
_JOINED_LISTS = {("permissions", "auto_approve")}


def merge_configs(user: dict[str, Any], project: dict[str, Any], at: tuple[str, ...] = ()) -> dict[str, Any]:
    merged = dict(user)
    for key, value in project.items():
        here = (*at, key)
        mine = merged.get(key)
        if isinstance(value, dict) and isinstance(mine, dict):
            merged[key] = merge_configs(mine, value, here)
        elif here in _NAMED_LISTS and isinstance(value, list) and isinstance(mine, list):
            names = {entry.get("name") for entry in value if isinstance(entry, dict)}
            merged[key] = [e for e in mine if not (isinstance(e, dict) and e.get("name") in names)] + value
        elif here in _JOINED_LISTS and isinstance(value, list) and isinstance(mine, list):
            merged[key] = mine + [item for item in value if item not in mine]
        else:
            merged[key] = value
    return merged


def load_environment(environ: Mapping[str, str]) -> Environment:
    fields = Environment.model_fields
    values = {name: environ[name.upper()] for name in fields if environ.get(name.upper())}
    try:
        return Environment.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper()
        raise ConfigError(f"environment variable {name}: {_expected(error)}.") from None


def unknown_keys(model: BaseModel, prefix: tuple[str | int, ...] = ()) -> list[str]:
    """Key paths (`[teams.budget] max_agent`) that the models kept as extras, each with the nearest valid name
    when one is close (`[lps] (did you mean [lsp]?)`)."""
    extras = model.model_extra or {}
    valid = list(type(model).model_fields)
    found = []
    for key, value in extras.items():
        section = not prefix and isinstance(value, dict)
        near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f" (did you mean {f'[{near[0]}]' if section else near[0]}?)" if near else ""
        found.append((f"[{key}]" if section else _key_path((*prefix, key))) + hint)
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if isinstance(item, BaseModel):
                path = (*prefix, name) if index is None else (*prefix, name, index)
                found.extend(unknown_keys(item, path))
    return found


def _describe(error: Any) -> str:
    return f"{_key_path(error['loc'])}: {_expected(error)}"


def _expected(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "this key is required"
    got = error.get("input")
    got_text = f'"{got}"' if isinstance(got, str) else _toml_repr(got)
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got_text}"
    # Constraint and custom validators: pydantic's message already says what is expected.
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return message
    return f"expected {message.removeprefix('Input should be ')}, got {got_text}"


def _toml_repr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _key_path(loc: tuple[str | int, ...] | list[str | int]) -> str:
    """`("teams", "budget", "max_per_team_usd")` -> `[teams.budget] max_per_team_usd`.

    Tables are the leading string parts; a list index turns the rest into `servers[1].command`.
    """
    parts = list(loc)
    split = next((i for i, part in enumerate(parts) if isinstance(part, int)), len(parts))
    table, rest = parts[: max(split - 1, 0)], parts[max(split - 1, 0) :]
    if split == len(parts):
        table, rest = parts[:-1], parts[-1:]
    key = ""
    for part in rest:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return f"[{'.'.join(map(str, table))}] {key}" if table else key
