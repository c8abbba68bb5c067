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
    """One key of a menu: go to ``goto``, maybe setting the topic or switching language.

    ``language`` is the language to switch to, or a table from the caller's language to
    the next one, so one key can switch both ways ("For English, press 9" and "Für
    Deutsch, drücken Sie die 9" in the English menu).
    """

    goto: str
    topic: str | None = None
    language: str | Mapping[str, str] | None = None

    def language_after(self, current: str) -> str:
        """The caller's language once this key was pressed in ``current``."""
        if self.language is None or isinstance(self.language, str):
            return self.language or current
        return self.language.get(current, current)

    def switches(self) -> tuple[tuple[str | None, str], ...]:
        """(from, to) of each language switch; ``from`` None: whatever the caller's is."""
        if self.language is None or isinstance(self.language, str):
            return ((None, self.language),) if self.language else ()
        return tuple(self.language.items())


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
