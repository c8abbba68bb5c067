"""Commands ask only for the settings they use, and find ``ivr dev``'s in its directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from ivr.cli import cli
from ivr.cli.dev_support import DevSession, dev_config_path, write_session
from tests.cli.test_accounts_cli import GOOD_CSV, PEPPER, write

NO_SECRETS = {"IVR_CONFIG": None, "TWILIO_AUTH_TOKEN": None, "IVR_TWILIO_AUTH_TOKEN": None,
              "IVR_PIN_PEPPER": None}  # fmt: skip


def test_account_commands_need_no_twilio_token(tmp_path: Path) -> None:
    """accounts import runs with a config that has no Twilio auth token: it verifies
    no webhook."""
    config = tmp_path / "ivr.toml"
    config.write_text(f'[pin_store]\nurl = "sqlite:///{tmp_path / "p.db"}"\npepper = "{PEPPER}"\n'
                      '[routing]\nnumber = "+4930123456"\n', encoding="utf-8")  # fmt: skip
    result = CliRunner().invoke(
        cli, ["--config", str(config), "accounts", "import", str(write(tmp_path, GOOD_CSV))],
        env=NO_SECRETS,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "imported 2 accounts" in result.output


def test_commands_in_an_ivr_dev_directory_use_its_config_and_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str, redis_client: redis.Redis
) -> None:
    """Run where ivr dev runs, without --config or IVR_CONFIG, a command uses dev's
    config and the Redis of the running ivr dev (its embedded one is on a random port)."""
    monkeypatch.chdir(tmp_path)
    config = dev_config_path(None)
    write_session(DevSession("http://127.0.0.1:5000", "", config, redis_url))
    runner = CliRunner()
    imported = runner.invoke(cli, ["accounts", "import", str(write(tmp_path, GOOD_CSV))],
                             env=NO_SECRETS)  # fmt: skip
    assert imported.exit_code == 0, imported.output
    unlocked = runner.invoke(cli, ["accounts", "unlock", "1001"], env=NO_SECRETS)
    assert unlocked.exit_code == 0, unlocked.output  # it found Redis: no "[redis] url" error
    assert "account 1001 had no lockout" in unlocked.output
