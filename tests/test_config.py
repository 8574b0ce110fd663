"""Settings come from defaults, then the TOML file, then JOBDASH_* variables; bad ones are named."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dashboard.config import ConfigError, load_settings


def write(tmp_path, text: str):
    path = tmp_path / "jobdash.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_when_no_file_and_no_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert (s.host, s.port, s.database_url, s.sources) == ("127.0.0.1", 5000, "sqlite:///jobdash.db", [])


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path):
    path = write(tmp_path, """
        port = 6001
        host = "0.0.0.0"
        retention_raw_hours = 12
        [[celery]]
        name = "billing"
        broker = "redis://127.0.0.1:6379/3"
        interval = 2
        [[celery]]
        name = "emails"
        broker = "amqp://guest:guest@127.0.0.1//"
        [[kafka]]
        name = "events"
        bootstrap_servers = "127.0.0.1:9092"
        groups = ["g1", "g2"]
    """)
    env = {"JOBDASH_PORT": "7002", "JOBDASH_READ_ONLY": "true",
           "JOBDASH_CELERY__BILLING__BROKER": "redis://10.0.0.5:6379/1",
           "JOBDASH_DASK__LAB__ADDRESS": "tcp://127.0.0.1:8786"}
    s = load_settings(path, env=env)
    assert s.port == 7002 and s.host == "0.0.0.0" and s.read_only is True and s.retention_raw_hours == 12
    by_key = {src.key: src for src in s.sources}
    assert set(by_key) == {"celery/billing", "celery/emails", "kafka/events", "dask/lab"}
    # The environment replaced one option of a file source and kept the rest.
    assert by_key["celery/billing"].options == {"broker": "redis://10.0.0.5:6379/1"}
    assert by_key["celery/billing"].interval == 2.0
    assert by_key["kafka/events"].options["groups"] == ["g1", "g2"]
    assert by_key["dask/lab"].options == {"address": "tcp://127.0.0.1:8786"}


def test_jobdash_config_variable_names_the_file(tmp_path):
    path = write(tmp_path, "port = 6123\n")
    assert load_settings(env={"JOBDASH_CONFIG": str(path)}).port == 6123


@pytest.mark.parametrize(
    "text, key, problem",
    [
        ("port = [1,2\n", "(syntax)", ""),
        ("colour = 'red'\n", "colour", "unknown setting"),
        ("port = 'eighty'\n", "port", "expected integer"),
        ("port = true\n", "port", "expected integer"),
        ("port = 70000\n", "port", "not a TCP port"),
        ("[[celery]]\nname = 'a'\n", "celery.a.broker", "missing"),
        ("[[celery]]\nbroker = 'redis://'\n", "celery[0].name", "missing"),
        ("[[celery]]\nname = 'a b'\nbroker = 'redis://'\n", "celery[0].name", "not a valid name"),
        ("[[celery]]\nname = 'a'\nbroker = 'redis://'\nbrokr = 'x'\n", "celery.a.brokr", "unknown key"),
        ("[[dask]]\nname = 'a'\naddress = 8786\n", "dask.a.address", "expected string"),
        ("[[dask]]\nname = 'a'\naddress = 'x'\ninterval = -1\n", "dask.a.interval", "positive"),
        ("[[consul]]\nname = 'a'\naddress = 'x'\n[[consul]]\nname = 'a'\naddress = 'y'\n", "consul.a", "duplicate"),
        ("celery = 'redis://'\n", "celery", "array of tables"),
        ("database_url = 'mysql://x'\n", "database_url", "unsupported database"),
    ],
)
def test_file_errors_name_file_key_and_problem(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert err.value.origin == str(path)
    assert err.value.key == key
    assert problem in err.value.problem


@pytest.mark.parametrize(
    "env, key, problem",
    [
        ({"JOBDASH_PORT": "abc"}, "JOBDASH_PORT", "expected integer"),
        ({"JOBDASH_READ_ONLY": "maybe"}, "JOBDASH_READ_ONLY", "expected a boolean"),
        ({"JOBDASH_NOPE": "1"}, "nope", "unknown setting"),
        ({"JOBDASH_REDIS__X__URL": "1"}, "JOBDASH_REDIS__X__URL", "KIND one of"),
        ({"JOBDASH_KAFKA__EV__BOOTSTRAP": "x"}, "JOBDASH_KAFKA__EV__BOOTSTRAP", "unknown key"),
        ({"JOBDASH_KAFKA__EV__INTERVAL": "1"}, "kafka.ev.bootstrap_servers", "missing"),
        ({"JOBDASH_DASK__D__ADDRESS": "x", "JOBDASH_DASK__D__TIMEOUT": "soon"}, "JOBDASH_DASK__D__TIMEOUT", "expected"),
    ],
)
def test_environment_errors_name_the_variable(tmp_path, monkeypatch, env, key, problem):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_settings(env=env)
    assert err.value.origin == "environment"
    assert err.value.key == key
    assert problem in err.value.problem


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "absent.toml", env={})
    assert "does not exist" in str(err.value)


def test_bad_config_exits_non_zero_before_starting_anything(tmp_path):
    db = tmp_path / "should-not-exist.db"
    path = write(tmp_path, f"database_url = 'sqlite:///{db}'\n[[kafka]]\nname = 'k'\n")
    proc = subprocess.run([sys.executable, "-m", "dashboard.cli", "--config", str(path), "serve"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"{path}: kafka.k.bootstrap_servers: missing" in proc.stderr
    assert "serving" not in proc.stdout
    assert not db.exists()
