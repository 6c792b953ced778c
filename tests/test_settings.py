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
        "WALLBOARD_AUTH_KIOSK_TOKENS": "tv1, tv2", "WALLBOARD_WEBHOOK_REGISTER": "false"})
    assert s.pbx.timeout == 2.5 and s.pbx.api_key == "from-a-file"
    assert s.auth.kiosk_tokens == ["tv1", "tv2"] and s.webhook.register is False
    assert "from-a-file" in s.secrets() and "tv2" in s.secrets()


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
