"""GitOps: a directory of per-tenant files as the desired state, and the plan to reach it.

    DIR/_common.yaml          merged under every tenant (optional)
    DIR/acme.yaml             tenant `acme` (.yaml, .yml, .json or .properties)
    DIR/<env>/...             overlay used with --env <env>

Precedence, lowest first: DIR/_common, DIR/<env>/_common, DIR/<tenant>, DIR/<env>/<tenant>.
A file's keys are config keys; the reserved `_tenant` section (display_name, plan,
labels) describes the tenant itself. In .properties files values are JSON when
they parse as JSON, else strings; `_tenant.plan=gold` and `_tenant.labels.region=eu`
spell the reserved section.

Everything is parsed and validated before anything is planned: one bad file and
nothing is applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import TypeAdapter, ValidationError

from tenantplane.contracts.config import ConfigKey
from tenantplane.contracts.errors import InvalidTenantId, describe
from tenantplane.contracts.ids import validate_tenant_id
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.contracts.values import JsonData
from tenantplane.services.config.schema import ConfigSchema
from tenantplane.services.runtime.errors import InvalidConfigValue, InvalidInput

SUFFIXES = (".yaml", ".yml", ".json", ".properties")
COMMON = "_common"
RESERVED = "_tenant"


class ApplyError(InvalidInput):
    """A directory that cannot be applied; `problems` lists every file:line and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            f"{len(problems)} problem(s), nothing applied:\n  " + "\n  ".join(problems)
        )
        self.problems = problems


@dataclass(frozen=True)
class Desired:
    """What one tenant should look like."""

    tenant_id: str
    display_name: str
    plan: str
    labels: dict[str, str]
    config: dict[str, Any]


@dataclass(frozen=True)
class Current:
    """What one tenant looks like now (None when it does not exist)."""

    plan: str
    config: dict[str, Any]


@dataclass
class TenantPlan:
    """The changes one tenant needs."""

    tenant_id: str
    create: Desired | None = None
    plan: str | None = None
    set: dict[str, Any] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)
    old: dict[str, Any] = field(default_factory=dict)
    # Secret values are sealed in the log and redacted in the read model, so whether one
    # changed is known only to the config service: they are always sent, and it appends
    # nothing for a value it already holds.
    secrets: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing to do but, perhaps, to send the secrets again."""
        return self.create is None and self.plan is None and not self.set and not self.unset


@dataclass(frozen=True)
class _Parsed:
    values: dict[str, Any]
    lines: dict[str, int]


def load(directory: Path, schema: ConfigSchema, env: str | None = None) -> list[Desired]:
    """Parse and validate a directory.

    Raises:
        ApplyError: listing every problem found, with file and line.
    """
    if not directory.is_dir():
        raise ApplyError([f"{directory}: not a directory"])
    problems: list[str] = []
    layers = [directory] + ([directory / env] if env else [])
    if env and not (directory / env).is_dir():
        problems.append(f"{directory / env}: no such environment directory")
    parsed = {path: _parse(path, problems) for layer in layers for path in _files(layer, problems)}
    common = [parsed[p] for p in parsed if p.stem == COMMON]
    tenants = sorted({p.stem for p in parsed if p.stem != COMMON})
    desired = []
    for tenant in tenants:
        files = [p for p in parsed if p.stem == tenant]
        item = _desired(tenant, files, common, parsed, schema, problems)
        if item is not None:
            desired.append(item)
    if problems:
        raise ApplyError(problems)
    return desired


def _files(layer: Path, problems: list[str]) -> list[Path]:
    if not layer.is_dir():
        return []
    found = sorted(p for p in layer.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    stems = [p.stem for p in found]
    for stem in {s for s in stems if stems.count(s) > 1}:
        problems.append(f"{layer}/{stem}.*: more than one file for the same tenant")
    return found


def _parse(path: Path, problems: list[str]) -> _Parsed:
    try:
        text = path.read_text()
        if path.suffix == ".properties":
            return _properties(text)
        if path.suffix == ".json":
            return _mapping(path, json.loads(text), _json_lines(text))
        return _mapping(path, yaml.safe_load(text) or {}, _yaml_lines(text))
    except json.JSONDecodeError as e:
        problems.append(f"{path}:{e.lineno}: invalid JSON: {e.msg}")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problems.append(f"{path}:{line}: invalid YAML: {getattr(e, 'problem', e)}")
    except (ValueError, OSError) as e:
        problems.append(f"{path}:{getattr(e, 'lineno', 1)}: {e}")
    return _Parsed({}, {})


def _mapping(path: Path, doc: Any, lines: dict[str, int]) -> _Parsed:
    if not isinstance(doc, dict):
        raise ValueError(f"top level must be a mapping of key: value, not {type(doc).__name__}")
    return _Parsed({str(k): v for k, v in doc.items()}, lines)


def _json_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith('"') and '":' in stripped:
            lines.setdefault(stripped[1 : stripped.index('":')], number)
    return lines


def _yaml_lines(text: str) -> dict[str, int]:
    node = yaml.compose(text)
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


class _LineError(ValueError):
    def __init__(self, lineno: int, message: str) -> None:
        super().__init__(message)
        self.lineno = lineno


def _properties(text: str) -> _Parsed:
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise _LineError(number, f"expected key=value, got {line[:60]!r}")
        key = key.strip()
        lines[key] = number
        _put(values, key, _property_value(value.strip()))
    return _Parsed(values, lines)


def _property_value(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _put(values: dict[str, Any], key: str, value: Any) -> None:
    """`_tenant.labels.region=eu` builds the nested reserved section; other keys stay flat."""
    if not key.startswith(RESERVED + "."):
        values[key] = value
        return
    section = values.setdefault(RESERVED, {})
    head, _, rest = key[len(RESERVED) + 1 :].partition(".")
    if rest:
        section.setdefault(head, {})[rest] = value
    else:
        section[head] = value


def _desired(
    tenant: str,
    files: list[Path],
    common: list[_Parsed],
    parsed: Mapping[Path, _Parsed],
    schema: ConfigSchema,
    problems: list[str],
) -> Desired | None:
    where = files[-1]
    try:
        validate_tenant_id(tenant)
    except InvalidTenantId as e:
        problems.append(f"{where}: file name is not a tenant id: {e}")
        return None
    merged: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for layer in [*common, *(parsed[p] for p in files)]:
        meta.update(layer.values.get(RESERVED, {}))
        merged.update({k: v for k, v in layer.values.items() if k != RESERVED})
    for key, value in merged.items():
        try:
            _JSON_VALUE.validate_python(value)
            schema.check({key: value})
        except ValidationError as e:
            problems.append(f"{_line_of(key, files, parsed)}: {key}: {_why(e)}")
        except InvalidConfigValue as e:
            problems.append(f"{_line_of(key, files, parsed)}: {e.message}")
    return _registration(tenant, meta, merged, where, problems)


def _line_of(key: str, files: list[Path], parsed: Mapping[Path, _Parsed]) -> str:
    for path in reversed(files):
        if key in parsed[path].lines:
            return f"{path}:{parsed[path].lines[key]}"
    return f"{files[-1]} (from {COMMON})"


def _registration(
    tenant: str, meta: dict[str, Any], config: dict[str, Any], where: Path, problems: list[str]
) -> Desired | None:
    bad_keys = [k for k in config if not _valid_key(k)]
    if bad_keys:
        problems.append(f"{where}: invalid config key(s): {', '.join(bad_keys)}")
    try:
        command = RegisterTenant(
            tenant_id=tenant,
            display_name=str(meta.get("display_name", tenant)),
            plan=str(meta.get("plan", "standard")),
            labels=meta.get("labels", {}),
            actor="apply",
        )
    except ValidationError as e:
        problems.append(f"{where}: {RESERVED}: {describe(e)}")
        return None
    return Desired(tenant, command.display_name, command.plan, dict(command.labels), config)


_CONFIG_KEY = TypeAdapter(ConfigKey)
# YAML reads `2026-01-01` as a date and `.nan` as NaN: neither is a JSON value a key can hold.
_JSON_VALUE: TypeAdapter[JsonData] = TypeAdapter(JsonData)


def _why(error: ValidationError) -> str:
    """The last reason pydantic gives (the first ones name each JSON type it is not)."""
    return error.errors(include_url=False)[-1]["msg"].removeprefix("Value error, ")


def _valid_key(key: str) -> bool:
    try:
        _CONFIG_KEY.validate_python(key)
    except ValidationError:
        return False
    return True


def plan(
    desired: list[Desired],
    current: Mapping[str, Current | None],
    prune: bool,
    secret: Callable[[str], bool] = lambda key: False,
) -> list[TenantPlan]:
    """The changes that bring each tenant from `current` to `desired`; `secret` tells the
    keys whose values are secret (see `TenantPlan.secrets`)."""
    plans = []
    for want in desired:
        have = current.get(want.tenant_id)
        step = TenantPlan(want.tenant_id)
        if have is None:
            step.create = want
            have = Current(plan=want.plan, config={})
        elif have.plan != want.plan:
            step.plan = want.plan
        step.secrets = {k: v for k, v in want.config.items() if secret(k)}
        step.set = {
            k: v
            for k, v in want.config.items()
            if not secret(k) and have.config.get(k, _MISSING) != v
        }
        step.old = {k: have.config.get(k) for k in step.set}
        if prune:
            step.unset = sorted(k for k in have.config if k not in want.config)
            step.old.update({k: have.config[k] for k in step.unset})
        plans.append(step)
    return plans


_MISSING = object()
