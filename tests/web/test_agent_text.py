"""The console's text table: every text in both languages, used where the console speaks."""

from __future__ import annotations

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
