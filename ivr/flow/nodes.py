"""The node value types of a call flow: pure frozen dataclasses, one per node ``type``.

:mod:`ivr.flow.model` builds them from a flow file; :mod:`ivr.flow.engine` walks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ivr.flow.actions import Reason

__all__ = [
    "CallerLookupNode",
    "CustomerNumberNode",
    "MenuKey",
    "MenuNode",
    "Node",
    "PinNode",
    "RouteNode",
]


@dataclass(frozen=True)
class MenuKey:
    """One key of a menu: go to ``goto``, maybe setting the topic or switching language."""

    goto: str
    topic: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class MenuNode:
    """One-digit choice; ``intro`` is spoken only when the menu is entered from elsewhere."""

    name: str
    prompt: str
    keys: Mapping[str, MenuKey]
    intro: str | None = None


@dataclass(frozen=True)
class CallerLookupNode:
    """Asks for the caller's accounts: ``single`` when exactly one, else ``other``."""

    name: str
    single: str
    other: str


@dataclass(frozen=True)
class CustomerNumberNode:
    """Collects a customer number of up to ``max_digits`` digits, ended with ``#``."""

    name: str
    prompt: str
    next: str
    max_digits: int = 12


@dataclass(frozen=True)
class PinNode:
    """Collects the Service-PIN and branches on the verdict (all targets are route nodes)."""

    name: str
    prompt: str
    retry_prompt: str
    verified: str
    failed: str
    locked: str


@dataclass(frozen=True)
class RouteNode:
    """Hands the call to an agent with ``reason``; ``after`` is spoken if that ends."""

    name: str
    reason: Reason
    prompt: str | None = None
    after: str | None = None


Node = MenuNode | CallerLookupNode | CustomerNumberNode | PinNode | RouteNode
