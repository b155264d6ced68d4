"""Secrets taken out of what the model, the status page and the log show: one function, used wherever the
person's command lines, URLs and environment are shown (upstreams, language servers, trust prompts, logs).

It recognises credentials by their place (a URL's password, an `Authorization` value, a `--token` flag's
value, a `…_KEY=` assignment, a query parameter named like a secret) and a few well-known token shapes.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_SECRET_WORD = r"(?:token|api[_-]?key|access[_-]?key|private[_-]?key|secret|password|passwd|pwd|credentials?)"
# A secret value ends where quoting, a separator or a closing bracket does.
_VALUE = r"[^\s\"'`&,;)]+"
_PATTERNS = (
    # scheme://user:password@host
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?=@)", re.I), r"\g<keep>" + MASK),
    # ?token=…, &api_key=…
    (
        re.compile(rf"(?P<keep>[?&;](?:key|sig|signature|[a-z0-9_.-]*{_SECRET_WORD}[a-z0-9_.-]*)=)[^&\s#\"']+", re.I),
        r"\g<keep>" + MASK,
    ),
    # Authorization: Bearer …, Basic …
    (re.compile(r"(?P<keep>\b(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{6,}", re.I), r"\g<keep>" + MASK),
    # --token VALUE, --api-key=VALUE, -p=VALUE is left (too short to tell)
    (re.compile(rf"(?P<keep>--[a-z0-9_-]*{_SECRET_WORD}[a-z0-9_-]*(?:=|\s+))(?!-){_VALUE}", re.I), r"\g<keep>" + MASK),
    # API_KEY=…, GITHUB_TOKEN: …, "password": "…"
    (
        re.compile(rf"(?P<keep>\b\w*{_SECRET_WORD}\w*[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*){_VALUE}", re.I),
        r"\g<keep>" + MASK,
    ),
    # Shapes of well-known tokens wherever they stand.
    (
        re.compile(
            r"\b(?:sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|"
            r"AKIA[0-9A-Z]{16}|glpat-[A-Za-z0-9_-]{20,})"
        ),
        MASK,
    ),  # fmt: skip
)


def redact(text: str) -> str:
    """`text` with every credential it shows replaced by `***`."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_argv(argv: list[str]) -> list[str]:
    """An argument list with secrets masked, a flag's value masked when the flag names a secret."""
    shown: list[str] = []
    for word in argv:
        secret_flag = bool(shown) and re.fullmatch(rf"--?[a-z0-9_-]*{_SECRET_WORD}[a-z0-9_-]*", shown[-1], re.I)
        shown.append(MASK if secret_flag and not word.startswith("-") else redact(word))
    return shown


def redacted(value: Any) -> Any:
    """Every string of `value` (nested dicts, lists and tuples) with its credentials masked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item) for item in value]
    return value
