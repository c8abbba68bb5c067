"""``ivr dev`` says how to turn the agent console on, and following it turns it on."""

from __future__ import annotations

import re
import shlex
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from werkzeug.security import check_password_hash

from ivr.cli.dev import DevOptions, DevSession, run_dev
from ivr.cli.dev_support import GENERATED_CONFIG
from tests.redis_server import free_port

PASSWORD = "a-long-dev-password"


@pytest.fixture
def in_empty_dir(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no IVR or Twilio variables but the run's Redis."""
    monkeypatch.chdir(tmp_path)
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "IVR_CONFIG",
                 "IVR_CONSOLE_SECRET_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    return tmp_path


def own_config(directory: Path) -> str:
    """A config of one's own, without any [console] table."""
    path = directory / "dev.toml"
    path.write_text(
        '[twilio]\nauth_token = "dev-auth-token-0123456789"\n'
        f'[pin_store]\nurl = "sqlite:///{directory / "pins.db"}"\npepper = "{"p" * 32}"\n'
        '[routing]\nnumber = "+4930901820"\n'
        f'[api]\ntoken = "{"a" * 32}"\n'
    )
    return str(path)


def run(config_path: str | None) -> tuple[str, int]:
    """Run ``ivr dev`` once: its banner, and the status of ``/agent/login`` meanwhile."""
    lines: list[str] = []
    status: list[int] = []

    def wait(session: DevSession) -> None:
        try:
            with urllib.request.urlopen(f"{session.url}/agent/login", timeout=5) as response:
                status.append(response.status)
        except urllib.error.HTTPError as exc:
            status.append(exc.code)

    run_dev(DevOptions(config_path, port=free_port(), worker=False), lines.append, wait=wait)
    return "\n".join(lines), status[0]


def printed_hash(banner: str) -> str:
    """Run the hash command the banner prints, typing PASSWORD at its prompt."""
    match = re.search(r"make one \(asks for the password\): (.+)", banner)
    assert match, banner
    # No terminal (own session): getpass reads the password from stdin instead.
    result = subprocess.run(
        shlex.split(match.group(1)), input=PASSWORD + "\n", capture_output=True, text=True,
        timeout=30, start_new_session=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def test_own_config_is_told_the_secret_key_and_an_agent(in_empty_dir: Path) -> None:
    """With no [console] the banner names the config, a secret key and an agent hash to
    add; adding them as printed turns the console on at the URL it gave."""
    path = own_config(in_empty_dir)
    banner, status = run(path)
    assert status == 404  # off
    assert f"Agent console: off. To turn it on, add to {path} and restart ivr dev:" in banner
    assert '  [console]\n  secret_key = "<32+ random characters>"' in banner
    assert '  [console.agents]\n  anna = "<password hash>"' in banner
    key_command = re.search(r"    make one: (.+)", banner)
    assert key_command, banner
    key = subprocess.run(shlex.split(key_command.group(1)), capture_output=True, text=True,
                         timeout=30, check=True).stdout.strip()  # fmt: skip
    hashed = printed_hash(banner)
    assert len(key) >= 32 and check_password_hash(hashed, PASSWORD)
    with open(path, "a", encoding="utf-8") as config:
        config.write(f'[console]\nsecret_key = "{key}"\n[console.agents]\nanna = "{hashed}"\n')
    banner, status = run(path)
    assert status == 200
    assert re.search(r"Agent console: http://127\.0\.0\.1:\d+/agent  \(agents: anna\)", banner)
    assert "To turn it on" not in banner


def test_generated_config_needs_only_an_agent(in_empty_dir: Path) -> None:
    """The config `ivr dev` writes has a secret key, so the banner asks only for an agent,
    and one added under [console.agents] turns the console on."""
    banner, status = run(None)
    assert status == 404
    assert f"add to {GENERATED_CONFIG} and restart ivr dev:" in banner
    assert "secret_key" not in banner and '  anna = "<password hash>"' in banner
    assert re.search(r"then log in at http://127\.0\.0\.1:\d+/agent\n", banner)
    with open(GENERATED_CONFIG, "a", encoding="utf-8") as config:
        config.write(f'\n[console.agents]\nanna = "{printed_hash(banner)}"\n')
    banner, status = run(None)
    assert status == 200 and "(agents: anna)" in banner
