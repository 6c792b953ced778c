from __future__ import annotations

from pathlib import Path

import pytest

from wallboard.settings import KEYS, ConfigError, defaults, load_settings

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_repo_config_is_valid_and_points_at_the_simulator() -> None:
    s = load_settings(ROOT / "config.toml", env={})
    assert s.pbx.base_url == "http://127.0.0.1:8100" and s.pbx.api_key == "sim-api-key"
    assert s.display.language == "vi" and s.auth.mode == "pbx"


def test_env_overrides_file_and_file_variable_reads_a_secret(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n")
    s = load_settings(write(tmp_path, '[pbx]\napi_key = "in-toml"\ntimeout = 3\n'), env={
        "WALLBOARD_PBX_TIMEOUT": "2.5", "WALLBOARD_PBX_API_KEY_FILE": str(secret),
        "WALLBOARD_AUTH_KIOSK_TOKENS": "tv-token-number-1, tv-token-number-2",
        "WALLBOARD_WEBHOOK_REGISTER": "false"})
    assert s.pbx.timeout == 2.5 and s.pbx.api_key == "from-a-file"
    assert s.auth.kiosk_tokens == ["tv-token-number-1", "tv-token-number-2"]
    assert s.webhook.register is False
    assert "from-a-file" in s.secrets() and "tv-token-number-2" in s.secrets()


def test_wallboard_config_variable_selects_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9123\n")
    assert load_settings(env={"WALLBOARD_CONFIG": str(path)}).server.port == 9123


@pytest.mark.parametrize(("text", "env", "words"), [
    ("[server]\nprot = 1\n", {}, "unknown config key [server] prot"),
    ("[serv]\n", {}, "unknown config section [serv]"),
    ("[server]\nport = 'eighty'\n", {}, "[server] port must be a whole number"),
    ("[pbx]\nbase_url = 'pbx.example.com'\n", {}, "[pbx] base_url must be a URL"),
    ("[pbx]\ntimezone = 'Mars/Olympus'\n", {}, "[pbx] timezone must be an IANA time zone"),
    ("[auth]\nmode = 'open'\n", {}, "[auth] mode must be one of 'pbx', 'none'"),
    ("[webhook]\nevents = ['missed']\n", {}, "[webhook] events may hold only"),
    ("", {"WALLBOARD_POLL_AGENTS_INTERVAL": "soon"}, "WALLBOARD_POLL_AGENTS_INTERVAL (for [poll] agents_interval)"),
    ("[server\n", {}, "is not valid TOML"),
    ("[auth]\nsession_max_hours = 0\n", {}, "[auth] session_max_hours must be at least 1"),
    ("[auth]\nrecheck_minutes = -5\n", {}, "[auth] recheck_minutes must be at least 1"),
    ("[server]\nmax_sockets_per_session = 0\n", {}, "[server] max_sockets_per_session must be at least 1"),
    ("[server]\nallow_missing_origin = 'yes'\n", {}, "[server] allow_missing_origin must be true or false"),
])
def test_a_mistake_is_one_sentence_naming_the_key(tmp_path: Path, text: str, env: dict[str, str],
                                                   words: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, text), env=env)
    message = str(e.value)
    assert words in message and "\n" not in message and "Traceback" not in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_with_values_is_checked_like_a_file() -> None:
    assert defaults().with_values(auth={"mode": "none"}).auth.mode == "none"
    with pytest.raises(ConfigError):
        defaults().with_values(pbx={"base_url": "nope"})


def test_every_key_is_in_the_repo_config_and_the_readme() -> None:
    config = (ROOT / "config.toml").read_text()
    readme = (ROOT / "README.md").read_text()
    for section, keys in KEYS.items():
        assert f"[{section}]" in config
        for key in keys:
            assert f"`{section}.{key.name}`" in readme, f"{section}.{key.name} is not documented"


def test_new_keys_have_their_defaults() -> None:
    s = defaults()
    assert (s.auth.session_max_hours, s.auth.recheck_minutes) == (12, 10)
    assert (s.server.max_sockets_per_session, s.server.allow_missing_origin) == (20, False)


@pytest.mark.parametrize(("text", "env", "key"), [
    ('[server]\nsession_secret = "hunter2"\n', {}, "[server] session_secret"),
    ("", {"WALLBOARD_WEBHOOK_SECRET": "short-secret"}, "[webhook] secret"),
    ('[auth]\nkiosk_tokens = ["long-enough-kiosk-token", "tv1"]\n', {}, "[auth] kiosk_tokens"),
])
def test_a_short_secret_or_kiosk_token_is_refused_naming_the_key(
        tmp_path: Path, text: str, env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, text), env=env)
    message = str(e.value)
    assert key in message and "16" in message and "\n" not in message
    for value in ("hunter2", "short-secret", "tv1"):
        assert repr(value) not in message  # the value itself is never echoed


def test_empty_secrets_still_mean_generated_and_long_ones_pass(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[server]\nsession_secret = ""\n[auth]\nkiosk_tokens = [""]\n'),
                      env={"WALLBOARD_WEBHOOK_SECRET": "x" * 16})
    assert s.server.session_secret == "" and s.webhook.secret == "x" * 16
