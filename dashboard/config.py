"""Settings: built-in defaults < a TOML file < JOBDASH_* environment variables."""
from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

logger = logging.getLogger(__name__)

ENV_PREFIX = "JOBDASH_"
DEFAULT_CONFIG_FILE = "jobdash.toml"

# Each watched kind: its required keys and its optional keys with their types.
# Options common to every kind (interval, timeout) are in SOURCE_COMMON.
SOURCE_COMMON: dict[str, type | tuple[type, ...]] = {"interval": (int, float), "timeout": (int, float)}
SOURCE_KINDS: dict[str, dict[str, dict[str, type | tuple[type, ...]]]] = {
    # transport_options: kombu's, e.g. the folders of the filesystem:// transport the demo uses.
    "celery": {"required": {"broker": str}, "optional": {"backend": str, "transport_options": dict}},
    "dask": {"required": {"address": str}, "optional": {}},
    "kafka": {"required": {"bootstrap_servers": str}, "optional": {
        "groups": list, "window": int, "history_interval": (int, float), "lag_warn": (int, float),
        "lag_error": (int, float), "lag_seconds_warn": (int, float), "lag_seconds_error": (int, float),
        "group_thresholds": dict}},
    "consul": {"required": {"address": str}, "optional": {"token": str, "dc": str, "scheme": str}},
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

# Top-level settings: name -> (type, default).
TOP_LEVEL: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "database_url": (str, "sqlite:///jobdash.db"),
    "secret_key": (str, ""),
    "host": (str, "127.0.0.1"),
    "port": (int, 5000),
    "read_only": (bool, False),
    "run_collectors": (bool, True),
    # History: raw samples for hours, rollups for days.
    "retention_raw_hours": ((int, float), 48),
    "retention_minute_days": ((int, float), 14),
    "retention_hour_days": ((int, float), 400),
    # Celery task rows: by age, and at most this many per source (the newest kept).
    "retention_tasks_days": ((int, float), 30),
    "retention_tasks_max": (int, 10_000_000),
    # Socket.IO message queue (e.g. redis://) when several web processes share rooms.
    "message_queue": (str, ""),
    # Reverse proxies in front of jobdash whose X-Forwarded-For/-Proto are trusted (0: none).
    "trusted_proxies": (int, 0),
    # A login session ends after this long without a request, and this long after login at most.
    "session_idle_hours": ((int, float), 12),
    "session_lifetime_hours": ((int, float), 7 * 24),
}


class ConfigError(Exception):
    """A configuration problem, naming where it came from, the key and what is wrong."""

    def __init__(self, origin: str, key: str, problem: str):
        self.origin, self.key, self.problem = origin, key, problem
        super().__init__(f"{origin}: {key}: {problem}")


@dataclass(frozen=True)
class SourceConfig:
    kind: str
    name: str
    options: dict[str, Any]
    interval: float = 5.0
    timeout: float = 5.0

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Settings:
    database_url: str = TOP_LEVEL["database_url"][1]
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 5000
    read_only: bool = False
    run_collectors: bool = True
    retention_raw_hours: float = 48
    retention_minute_days: float = 14
    retention_hour_days: float = 400
    retention_tasks_days: float = 30
    retention_tasks_max: int = 10_000_000
    message_queue: str = ""
    trusted_proxies: int = 0
    session_idle_hours: float = 12
    session_lifetime_hours: float = 7 * 24
    sources: list[SourceConfig] = field(default_factory=list)
    origin: str = "defaults"

    def source(self, kind: str, name: str) -> SourceConfig | None:
        """The configured source of `kind` called `name`, if there is one."""
        return next((s for s in self.sources if s.kind == kind and s.name == name), None)


def _type_name(expected) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join({int: "integer", float: "number", str: "string", bool: "boolean", list: "list", dict: "table"}[t] for t in types)


def _check_type(origin: str, key: str, value: Any, expected) -> Any:
    types = expected if isinstance(expected, tuple) else (expected,)
    # bool is an int in Python; a TOML `true` must not pass for a port number.
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(origin, key, f"expected {_type_name(expected)}, got {value!r}")
    if not isinstance(value, types):
        raise ConfigError(origin, key, f"expected {_type_name(expected)}, got {value!r}")
    return value


def _coerce_env(origin: str, key: str, raw: str, expected) -> Any:
    types = expected if isinstance(expected, tuple) else (expected,)
    if bool in types:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(origin, key, f"expected a boolean (1/0, true/false), got {raw!r}")
    for t in types:
        if t is str:
            return raw
        try:
            return t(raw)
        except ValueError:
            continue
    if list in types:
        return [item.strip() for item in raw.split(",") if item.strip()]
    raise ConfigError(origin, key, f"expected {_type_name(expected)}, got {raw!r}")


def _source(origin: str, kind: str, raw: Mapping[str, Any], index: int) -> SourceConfig:
    where = f"{kind}[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(origin, where, "expected a table like [[%s]] with name = ..." % kind)
    spec = SOURCE_KINDS[kind]
    name = raw.get("name")
    if name is None:
        raise ConfigError(origin, f"{where}.name", "missing; every source needs a name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(origin, f"{where}.name", f"{name!r} is not a valid name (letters, digits, _ . -; at most 63)")
    where = f"{kind}.{name}"
    allowed = {"name", *spec["required"], *spec["optional"], *SOURCE_COMMON}
    for key in raw:
        if key not in allowed:
            raise ConfigError(origin, f"{where}.{key}", f"unknown key; {kind} sources take {', '.join(sorted(allowed))}")
    for key, expected in spec["required"].items():
        if key not in raw:
            raise ConfigError(origin, f"{where}.{key}", "missing; required for %s sources" % kind)
    options: dict[str, Any] = {}
    for key, expected in {**spec["required"], **spec["optional"]}.items():
        if key in raw:
            options[key] = _check_type(origin, f"{where}.{key}", raw[key], expected)
    common = {}
    for key in SOURCE_COMMON:
        if key in raw:
            value = float(_check_type(origin, f"{where}.{key}", raw[key], SOURCE_COMMON[key]))
            if value <= 0:
                raise ConfigError(origin, f"{where}.{key}", f"must be a positive number of seconds, got {raw[key]!r}")
            common[key] = value
    return SourceConfig(kind=kind, name=name, options=options, **common)


def _apply_top_level(settings: Settings, origin: str, values: Mapping[str, Any], from_env: bool) -> None:
    for key, value in values.items():
        if key not in TOP_LEVEL:
            raise ConfigError(origin, key, f"unknown setting; known: {', '.join(sorted(TOP_LEVEL))}")
        expected = TOP_LEVEL[key][0]
        value = _coerce_env(origin, ENV_PREFIX + key.upper(), value, expected) if from_env else _check_type(origin, key, value, expected)
        if key == "port" and not 0 < value < 65536:
            raise ConfigError(origin, ENV_PREFIX + "PORT" if from_env else key, f"not a TCP port: {value}")
        if key in ("trusted_proxies", "session_idle_hours", "session_lifetime_hours") and not 0 <= value < 1e6:
            raise ConfigError(origin, ENV_PREFIX + key.upper() if from_env else key, f"out of range: {value}")
        setattr(settings, key, value)


def _read_file(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(str(path), "(file)", "does not exist")
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "(syntax)", str(exc)) from None


def _env_sources(env: Mapping[str, str]) -> dict[tuple[str, str], dict[str, str]]:
    """Collect JOBDASH_<KIND>__<NAME>__<KEY> variables into per-source tables."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        parts = var[len(ENV_PREFIX):].split("__")
        if len(parts) != 3 or parts[0].lower() not in SOURCE_KINDS:
            raise ConfigError("environment", var, "expected JOBDASH_<KIND>__<NAME>__<KEY> with KIND one of " + ", ".join(k.upper() for k in SOURCE_KINDS))
        kind, name, key = parts[0].lower(), parts[1].lower(), parts[2].lower()
        found.setdefault((kind, name), {})[key] = raw
    return found


def load_settings(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from defaults, then the TOML file, then JOBDASH_* variables; raise ConfigError."""
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get("JOBDASH_CONFIG"))
    file_path = Path(path or env.get("JOBDASH_CONFIG") or DEFAULT_CONFIG_FILE)
    origin = str(file_path)
    data = _read_file(file_path, explicit)

    settings = Settings(origin=origin if data else "defaults")
    top = {k: v for k, v in data.items() if k not in SOURCE_KINDS}
    _apply_top_level(settings, origin, top, from_env=False)

    sources: dict[tuple[str, str], SourceConfig] = {}
    for kind in SOURCE_KINDS:
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            raise ConfigError(origin, kind, f"expected an array of tables ([[{kind}]]), got a {type(entries).__name__}")
        for index, raw in enumerate(entries):
            source = _source(origin, kind, raw, index)
            if (kind, source.name) in sources:
                raise ConfigError(origin, f"{kind}.{source.name}", "duplicate name; each source of a kind needs its own")
            sources[(kind, source.name)] = source

    env_top = {}
    for var, raw in env.items():
        if var.startswith(ENV_PREFIX) and "__" not in var and var != "JOBDASH_CONFIG":
            env_top[var[len(ENV_PREFIX):].lower()] = raw
    _apply_top_level(settings, "environment", env_top, from_env=True)

    for (kind, name), values in _env_sources(env).items():
        spec = SOURCE_KINDS[kind]
        types = {**spec["required"], **spec["optional"], **SOURCE_COMMON}
        merged: dict[str, Any] = {}
        if (kind, name) in sources:
            existing = sources[(kind, name)]
            merged = {"name": name, **existing.options, "interval": existing.interval, "timeout": existing.timeout}
        merged["name"] = name
        for key, raw in values.items():
            var = f"{ENV_PREFIX}{kind.upper()}__{name.upper()}__{key.upper()}"
            if key not in types:
                raise ConfigError("environment", var, f"unknown key {key!r}; {kind} sources take {', '.join(sorted(types))}")
            merged[key] = _coerce_env("environment", var, raw, types[key])
        sources[(kind, name)] = _source("environment", kind, merged, 0)

    settings.sources = list(sources.values())
    if not settings.database_url.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql"):
        raise ConfigError(origin if "database_url" in top else "environment", "database_url", f"unsupported database {settings.database_url!r}; use sqlite:/// or postgresql://")
    return settings
