"""The action registry: the @action decorator, parameter specs and input checking."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dashboard.auth.users import ROLES
from dashboard.config import SOURCE_KINDS, Settings, SourceConfig

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$")
TARGET_MAX = 255
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list of strings"}


def type_name(types: type | tuple[type, ...]) -> str:
    """How a parameter's type reads in messages; a tuple (e.g. (int, str)) takes any of its types."""
    return " or ".join(TYPE_NAMES[t] for t in (types if isinstance(types, tuple) else (types,)))


@dataclass(frozen=True)
class ActionResult:
    """What an action function reports: whether it worked, a message for people, details to audit."""

    ok: bool
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Param:
    """One parameter an action takes."""

    type: type | tuple[type, ...]
    required: bool = True
    default: Any = None
    max_length: int | None = None  # for strings (characters) and lists (items)
    choices: tuple[Any, ...] | None = None


# (runtime, source, target, params) -> ActionResult
ActionFunction = Callable[[Any, SourceConfig, str, dict[str, Any]], ActionResult]


@dataclass(frozen=True)
class Action:
    name: str
    kind: str  # the watched system: the part of the name before the first dot
    role: str
    confirm: bool
    description: str
    params: dict[str, Param]
    timeout: float
    fn: ActionFunction

    def describe(self) -> dict[str, Any]:
        """The action as the API lists it."""
        return {"name": self.name, "kind": self.kind, "role": self.role, "confirm": self.confirm,
                "description": self.description,
                "params": {n: {"type": type_name(p.type), "required": p.required} for n, p in self.params.items()}}


REGISTRY: dict[str, Action] = {}


def action(name: str, *, role: str = "admin", confirm: bool = False, description: str = "",
           params: dict[str, Param] | None = None, timeout: float = 30.0) -> Callable[[ActionFunction], ActionFunction]:
    """Register a function as the action `name` ("<kind>.<verb>"), run only through perform()."""
    kind = name.split(".", 1)[0]
    # Mistakes here are the programmer's: fail at import, not at the first click.
    if not NAME_RE.match(name) or kind not in SOURCE_KINDS:
        raise ValueError(f"action name {name!r} must be <kind>.<verb> with kind one of {', '.join(SOURCE_KINDS)}")
    if role not in ROLES:
        raise ValueError(f"action {name}: unknown role {role!r}")
    if params and ("confirm" in params or any(not set(p.type if isinstance(p.type, tuple) else (p.type,)) <= set(TYPE_NAMES)
                                              for p in params.values())):
        raise ValueError(f"action {name}: 'confirm' is reserved and types must be one of bool, int, float, str, list")

    def register(fn: ActionFunction) -> ActionFunction:
        if name in REGISTRY:
            raise ValueError(f"action {name} registered twice")
        REGISTRY[name] = Action(name, kind, role, confirm, description or (fn.__doc__ or "").strip(),
                                dict(params or {}), timeout, fn)
        return fn

    return register


class Invalid(Exception):
    """Input refused before anything was done; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def find_source(settings: Settings, act: Action, source: Any) -> SourceConfig:
    """The configured source of the action's kind named `source`."""
    if not isinstance(source, str) or not source:
        raise Invalid(400, f"source must be the name of a configured {act.kind} source")
    found = settings.source(act.kind, source)
    if found is None:
        raise Invalid(404, f"no {act.kind} source called {source!r}")
    return found


def check_target(target: Any) -> str:
    if not isinstance(target, str) or not target or len(target) > TARGET_MAX or CONTROL_CHARS.search(target):
        raise Invalid(400, f"target must be a non-empty string of at most {TARGET_MAX} printable characters")
    return target


def check_params(act: Action, params: Any) -> dict[str, Any]:
    """The params with defaults filled in; Invalid naming the first problem."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise Invalid(400, "params must be a JSON object")
    unknown = sorted(set(params) - set(act.params) - {"confirm"})
    if unknown:
        takes = ", ".join(act.params) or "no parameters"
        raise Invalid(400, f"unknown parameter {unknown[0]!r}; {act.name} takes {takes}")
    checked: dict[str, Any] = {}
    for pname, spec in act.params.items():
        if pname not in params:
            if spec.required:
                raise Invalid(400, f"missing parameter {pname!r} ({type_name(spec.type)})")
            checked[pname] = spec.default
            continue
        value = params[pname]
        # bool is an int in Python; JSON true must not pass for a number, nor 1 for true.
        wrong = isinstance(value, bool) != (spec.type is bool) or not isinstance(value, spec.type)
        if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            wrong, value = False, float(value)
        if spec.type is list and not wrong:
            wrong = not all(isinstance(item, str) for item in value)
        if wrong:
            raise Invalid(400, f"parameter {pname!r} must be {type_name(spec.type)}")
        if spec.max_length is not None and isinstance(value, (str, list)) and len(value) > spec.max_length:
            unit = "items" if isinstance(value, list) else "characters"
            raise Invalid(400, f"parameter {pname!r} is longer than {spec.max_length} {unit}")
        if spec.choices is not None and value not in spec.choices:
            raise Invalid(400, f"parameter {pname!r} must be one of {', '.join(map(str, spec.choices))}")
        checked[pname] = value
    if act.confirm and params.get("confirm") is not True:
        raise Invalid(400, f"confirmation required: {act.name} cannot be undone here; send \"confirm\": true")
    return checked
