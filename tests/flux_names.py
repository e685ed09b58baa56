"""The names a dashboard's Flux query uses: its ``_measurement``, its ``_field`` values and
the tags its filters, ``group``, ``keep`` and ``rename`` name, read by a small, strict
reader of the Flux the CellSafe dashboards are written in.

Strict on purpose: a stage, a predicate or a column list it does not know raises
``FluxUnreadable`` naming it, so that a new query cannot pass the dashboard check
unread. Teach it the new construct (and what it names) rather than loosening it.

Shapes read (``docs/grafana/influxdb.py`` writes them):

- ``from(bucket: "${bucket}")``, then ``|>`` stages: ``range(start: v.timeRangeStart,
  stop: v.timeRangeStop)``, ``filter(fn: (r) => <predicate>)``,
  ``aggregateWindow(every: <v.windowPeriod | 5m>, fn: <last|min|max|mean>, createEmpty:
  false)``, ``difference(nonNegative: true)``, ``group``/``keep(columns: ["a", ...])``,
  ``rename(columns: {a: "b", ...})``;
- ``import "influxdata/influxdb/schema"`` and one ``schema.tagValues(bucket: "${bucket}",
  tag: "<tag>", predicate: (r) => <predicate>, start: ..., stop: ...)``;
- a predicate: comparisons ``r.<column> <==|!=|=~|!~> <"string"|/regex/>`` joined by
  ``and``/``or`` and parentheses; ``_measurement`` and ``_field`` only with ``==`` a
  string or ``=~ /^(a|b)$/`` (a list of names), so that the names are known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

COLUMNS = frozenset({"_time", "_value", "_field", "_measurement", "_start", "_stop"})

_ATOM = re.compile(r'r\.([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|=~|!~)\s*("[^"\\]*"|/(?:[^/\\\n]|\\.)*/)')
_JOINS = re.compile(r"(?:\s|\(|\)|\x00|\band\b|\bor\b)*")  # \x00: a comparison
_NAMES = re.compile(r"/\^\(?([A-Za-z0-9_]+(?:\|[A-Za-z0-9_]+)*)\)?\$/")
_FROM = re.compile(r'from\(bucket: "\$\{bucket\}"\)')
_RANGE = re.compile(r"range\(start: v\.timeRangeStart, stop: v\.timeRangeStop\)")
_FILTER = re.compile(r"filter\(fn: \(r\) => (.+)\)", re.DOTALL)
_WINDOW = re.compile(
    r"aggregateWindow\(every: (?:v\.windowPeriod|\d+[smh]), fn: (?:last|min|max|mean),"
    r" createEmpty: false\)"
)
_DIFFERENCE = re.compile(r"difference\(nonNegative: true\)")
_COLUMNS = re.compile(r'(?:group|keep)\(columns: \[("[^"]*"(?:, "[^"]*")*)\]\)')
_RENAME = re.compile(r'rename\(columns: \{(\w+: "\w+"(?:, \w+: "\w+")*)\}\)')
_TAG_VALUES = re.compile(
    r'import "influxdata/influxdb/schema"\s+schema\.tagValues\(\s*bucket: "\$\{bucket\}",'
    r'\s*tag: "(\w+)",\s*predicate: \(r\) => (.+?),'
    r"\s*start: v\.timeRangeStart, stop: v\.timeRangeStop,?\s*\)",
    re.DOTALL,
)


class FluxUnreadable(ValueError):
    """A query, stage or predicate that the reader does not know."""


@dataclass
class FluxNames:
    """What one query names: ``measurements`` and ``fields`` (values of ``_measurement``
    and ``_field``), and ``tags`` (tag columns)."""

    measurements: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)


def _names(op: str, operand: str, where: str) -> set[str]:
    """The names a ``_measurement``/``_field`` comparison admits."""
    if op == "==" and operand.startswith('"'):
        return {operand[1:-1]}
    listed = _NAMES.fullmatch(operand) if op == "=~" else None
    if listed is None:
        raise FluxUnreadable(f"{where}: cannot tell the names that {op} {operand} admits")
    return set(listed.group(1).split("|"))


def _predicate(text: str, found: FluxNames) -> None:
    atoms = list(_ATOM.finditer(text))
    if not atoms or not _JOINS.fullmatch(_ATOM.sub("\x00", text)):
        raise FluxUnreadable(f"predicate not read: {text!r}")
    for atom in atoms:
        column, op, operand = atom.groups()
        if column == "_measurement":
            found.measurements |= _names(op, operand, text)
        elif column == "_field":
            found.fields |= _names(op, operand, text)
        else:
            _column(column, found)


def _column(name: str, found: FluxNames) -> None:
    if name.startswith("_"):
        if name not in COLUMNS:
            raise FluxUnreadable(f"column {name!r} is not one of {sorted(COLUMNS)}")
    else:
        found.tags.add(name)


def flux_names(query: str) -> FluxNames:
    """The names ``query`` uses. Raises FluxUnreadable on anything outside the shapes
    above (module docstring), naming the part it could not read."""
    found = FluxNames()
    variable = _TAG_VALUES.fullmatch(query.strip())
    if variable is not None:
        _column(variable.group(1), found)
        _predicate(variable.group(2), found)
        return found
    first, *stages = (s.strip() for s in query.split("|>"))
    if not _FROM.fullmatch(first):
        raise FluxUnreadable(f'a query starts with from(bucket: "${{bucket}}"), not {first!r}')
    for stage in stages:
        if _RANGE.fullmatch(stage) or _WINDOW.fullmatch(stage) or _DIFFERENCE.fullmatch(stage):
            continue
        if (match := _FILTER.fullmatch(stage)) is not None:
            _predicate(match.group(1), found)
        elif (match := _COLUMNS.fullmatch(stage)) is not None:
            for name in re.findall(r'"([^"]*)"', match.group(1)):
                _column(name, found)
        elif (match := _RENAME.fullmatch(stage)) is not None:
            for name in re.findall(r'(\w+): "', match.group(1)):
                _column(name, found)
        else:
            raise FluxUnreadable(f"stage not read: {stage!r}")
    return found
