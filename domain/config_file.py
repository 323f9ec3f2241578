"""Reading a TOML configuration file into a validated model, with errors an operator can act on.

Shared by the strategy and the contact profiles: a broken file is one error listing every problem as
`file: field.path: message`, never a traceback and never a config that silently means something else.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError


class ConfigError(ValueError):
    """A configuration file that cannot be used, with one line per problem: file, field, message."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {p}" for p in problems))


def error_location(loc: tuple[int | str, ...], raw: object) -> str:
    """`steps[2 id=call].dpd` rather than pydantic's `steps.2.dpd`: list items are named by their `id`."""
    parts: list[str] = []
    node: object = raw
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            element = node[item]
            ident = element.get("id") if isinstance(element, dict) else None
            parts[-1] = f"{parts[-1]}[{item}{f' id={ident}' if ident else ''}]" if parts else str(item)
            node = element
        else:
            parts.append(str(item))
            node = node.get(str(item)) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def validation_problems(error: ValidationError, raw: object, prefix: str = "") -> list[str]:
    """One `field.path: message` line per pydantic error; `prefix` names the table `raw` came from."""
    lines = []
    for e in error.errors():
        where = error_location(tuple(e["loc"]), raw)
        if prefix:
            where = prefix if where == "(top level)" else f"{prefix}.{where}"
        lines.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return lines


def parse_toml(text: str, source: Path | str, error: type[ConfigError]) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as failure:
        raise error(source, [f"not valid TOML: {failure}"]) from None


def read_config_text(path: Path, error: type[ConfigError]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as failure:
        raise error(path, [f"cannot read: {failure.strerror}"]) from None
