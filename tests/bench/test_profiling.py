"""The profile's summary by layer: where a step's time goes."""

from __future__ import annotations

import pytest

from bench.profiling import _layer, by_layer, top_functions

STACKS = "\n".join(
    [
        "handle (gunicorn/workers/gthread.py:1);step (ivr/calls.py:9);"
        "load (ivr/store/calls.py:40);loads (json/__init__.py:346) 3",
        "handle (gunicorn/workers/gthread.py:1);step (ivr/calls.py:9);"
        "execute (/v/site-packages/redis/client.py:5);recv_into (socket.py:1) 5",
        "handle (gunicorn/workers/gthread.py:1);parse (gunicorn/http/message.py:2) 2",
    ]
)


@pytest.mark.parametrize(
    ("frames", "layer"),
    [
        (["a (ivr/store/calls.py:1)", "loads (json/decoder.py:2)"], "JSON"),
        (
            ["a (/x/redis/connection.py:1)", "recv (socket.py:2)"],
            "redis-py: commands, sockets, pool",
        ),
        (["a (ivr/store/redis_client.py:1)"], "product: stores' own Python"),
        (["a (flask/app.py:1)", "b (ivr/web/voice.py:2)"], "product: calls, verification, web"),
        (["select (selectors.py:1)"], "other"),
    ],
)
def test_a_sample_belongs_to_its_innermost_named_layer(frames: list[str], layer: str) -> None:
    """A sample counts for the layer of its innermost frame that some layer names."""
    assert _layer(frames) == layer


def test_layer_shares_add_up_and_are_sorted() -> None:
    """The layers' shares add up to all samples, the largest first."""
    shares = by_layer(STACKS)
    assert [layer for layer, _ in shares] == [
        "redis-py: commands, sockets, pool",
        "JSON",
        "gunicorn: HTTP, sockets, worker",
    ]
    assert sum(share for _, share in shares) == pytest.approx(1.0)
    assert "by layer" in top_functions(STACKS)
