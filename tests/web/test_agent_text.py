"""The console's text table: every text in both languages, used where the console speaks."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from ivr.web import agent_text


def test_every_text_exists_in_both_languages() -> None:
    """German and English have the same keys, so no page falls back to a missing text."""
    german, english = (dict(words) for _, words in agent_text.every_language())
    assert set(german) == set(english)


def test_disabled_page_speaks_from_the_table(client: FlaskClient) -> None:
    """Without [console.agents] the 404 page shows the table's German and English texts."""
    response = client.get("/agent")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    for code in agent_text.LANGUAGES:
        words = agent_text.texts(code)
        assert f'lang="{code}">{words["disabled"]}</p>' in html
        assert words["disabled_title"] in html


@pytest.mark.parametrize(
    ("routed", "identified", "ended", "phase"),
    [
        (False, False, False, agent_text.IDENTIFYING),
        (False, False, True, agent_text.ENDED_IN_IVR),
        (True, True, False, agent_text.IDENTIFIED),
        (True, True, True, agent_text.IDENTIFIED),
        (True, False, False, agent_text.NOT_IDENTIFIED),
        (True, False, True, agent_text.NOT_IDENTIFIED),
    ],
)
def test_only_a_routed_call_is_identified_or_not(
    routed: bool, identified: bool, ended: bool, phase: str
) -> None:
    """Before routing a call is "identifying" (or ended in the IVR), never "not identified"."""
    pop = {"routed": routed, "identified": identified, "ended": ended}
    assert agent_text.phase(pop) == phase
    for code in agent_text.LANGUAGES:
        assert agent_text.texts(code)[phase]  # the badge and banner text of each phase
