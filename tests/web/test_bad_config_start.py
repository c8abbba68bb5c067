"""A bad config stops gunicorn with one line per problem, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fleet.web_nodes import SCRUBBED_PREFIXES


def test_gunicorn_stops_with_every_config_problem_on_a_line(tmp_path: Path) -> None:
    """gunicorn "ivr:create_app()" on a config with five problems prints each as one
    "config: …" line, no traceback, and the master stops ("App failed to load")."""
    conf = tmp_path / "bad.toml"
    conf.write_text('[pin]\nlength = 40\n[routing]\nmode = "enqueue"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    done = subprocess.run(  # noqa: S603 - fixed argv
        [str(gunicorn), "--bind", "127.0.0.1:0", "ivr:create_app()"],
        env={**env, "IVR_CONFIG": str(conf)}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0
    config_lines = [line for line in output.splitlines() if line.startswith("config: ")]
    assert len(config_lines) == 5, output
    for key in ("[pin] length", "[twilio] auth_token", "[pin_store] pepper", "workflow_sid",
                "[api] token"):  # fmt: skip
        assert any(key in line for line in config_lines), output
    assert "Traceback" not in output
    assert "App failed to load" in output
