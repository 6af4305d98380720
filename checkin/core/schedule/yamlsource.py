"""Read YAML text into plain values whose mappings remember the line of every key. Pure.

``read_yaml(text)`` never raises on bad input: it returns the data (or None) and a list of
``YamlProblem`` (1-based line, key if one can be named, what is wrong). It finds every tab
indentation and every duplicate key, not only the first, so an admin can fix a file in one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml


class LineMap(dict[Any, Any]):
    """A YAML mapping. ``line`` is where it starts; ``key_lines[key]`` is the line of ``key``."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: str) -> int:
        """The line of ``key`` if present, else where the mapping starts."""
        return self.key_lines.get(key, self.line)


@dataclass(frozen=True)
class YamlProblem:
    line: int | None
    key: str | None
    problem: str


class LineLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no arbitrary objects), building ``LineMap``s and recording
    duplicate keys instead of silently keeping the last one, as PyYAML does."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.problems: list[YamlProblem] = []


def _construct_map(loader: LineLoader, node: yaml.MappingNode) -> LineMap:
    loader.flatten_mapping(node)  # resolves "<<" merge keys
    result = LineMap(node.start_mark.line + 1)
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            loader.problems.append(YamlProblem(line, None, "a key must be a plain name"))
            continue
        if key in result:
            first = result.key_lines[key]
            loader.problems.append(
                YamlProblem(line, str(key), f"duplicate key (already set at line {first})")
            )
            continue
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)

_KEY_ON_LINE = re.compile(r"^[ \t]*(?:-[ \t]+)*([A-Za-z_][\w-]*)[ \t]*:")
_INDENT = re.compile(r"^[ \t]*(?:-[ \t]+)*")


def key_on_line(text: str, line: int | None) -> str | None:
    """The mapping key written on 1-based ``line`` of ``text``, if any (for error messages)."""
    lines = text.splitlines()
    if line is None or not 1 <= line <= len(lines):
        return None
    match = _KEY_ON_LINE.match(lines[line - 1])
    return match.group(1) if match else None


def _tab_problems(text: str) -> list[YamlProblem]:
    problems = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = _INDENT.match(raw)
        if indent and "\t" in indent.group():
            problems.append(
                YamlProblem(
                    number,
                    key_on_line(text, number),
                    "a tab is used for indentation; YAML needs spaces",
                )
            )
    return problems


def _syntax_problem(text: str, exc: yaml.MarkedYAMLError) -> YamlProblem:
    mark, context = exc.problem_mark, exc.context_mark
    if mark is None or (context is not None and mark.line >= len(text.splitlines())):
        # "unexpected end of stream": the mistake is where the unclosed thing started.
        mark, context = context, None
    if mark is None:
        return YamlProblem(None, None, f"YAML syntax error: {exc}")
    line = mark.line + 1
    what = f"{exc.problem or 'invalid YAML'} (column {mark.column + 1})"
    if exc.context and context is not None and context.line != mark.line:
        what += f", {exc.context} that starts at line {context.line + 1}"
    elif exc.context:
        what = f"{exc.context}: {what}"
    return YamlProblem(line, key_on_line(text, line), f"YAML syntax error: {what}")


def read_yaml(text: str) -> tuple[Any, list[YamlProblem]]:
    """Parse ``text``; return ``(data, problems)``. ``data`` is None when it could not be read."""
    if not text.strip():
        return None, [YamlProblem(1, None, "the file is empty")]
    tabs = _tab_problems(text)
    if tabs:
        # PyYAML would stop at the first tab with a confusing token error; report them all.
        return None, tabs
    loader: LineLoader | None = None
    try:
        loader = LineLoader(text)  # the reader rejects control characters right here
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(text, exc)]
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        return None, [
            YamlProblem(
                line,
                key_on_line(text, line),
                f"character U+{exc.character:04X} is not allowed ({exc.reason})",
            )
        ]
    except yaml.YAMLError as exc:  # no position known
        return None, [YamlProblem(None, None, f"YAML error: {exc}")]
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        return None, [YamlProblem(1, None, "the file is empty (only comments)")]
    return data, list(loader.problems)
