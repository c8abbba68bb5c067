"""What a flow says: prompt tables and voices, checked and pre-rendered at load time.

``[prompts."de-DE"]`` maps prompt keys to texts. A text may instead be a list of parts,
each a text or a ``{ text = "...", language = "en-US" }`` table: such a part is spoken in
that (declared) language and its voice, e.g. "For English, press 9" inside the German
menu. Texts may use the placeholders ``{pin_length}`` and ``{attempts_per_call}``, filled
in once here so the engine only looks texts up. ``[voices]`` maps a language to a Twilio
voice name. Every function appends its problems (without the file name) to ``out``
instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Part:
    """One stretch of a prompt, spoken in ``language`` (the prompt's own unless it said)."""

    text: str
    language: str


Prompts = Mapping[str, Mapping[str, tuple[Part, ...]]]
"""Language -> prompt key -> its rendered parts, in the order they are spoken."""


def render_prompts(
    raw: Any, languages: Sequence[str], values: Mapping[str, object], out: list[str]
) -> Prompts:
    """Check the ``[prompts]`` table and fill in the placeholders from ``values``."""
    if not isinstance(raw, Mapping):
        out.append("[prompts] must be a table with one table of texts per language")
        return MappingProxyType({})
    for language in raw:
        if languages and language not in languages:
            out.append(f"[prompts] language '{language}' is not declared in [flow] languages")
    rendered: dict[str, Mapping[str, tuple[Part, ...]]] = {}
    for language in languages:
        table = raw.get(language)
        if not isinstance(table, Mapping):
            out.append(f"[prompts] has no table of texts for language '{language}'")
            continue
        parts = {}
        for key, text in table.items():
            where = f"prompt '{key}' in language '{language}'"
            parts[key] = _parts(text, language, languages, values, where, out)
        rendered[language] = MappingProxyType(parts)
    return MappingProxyType(rendered)


def _parts(
    raw: Any,
    language: str,
    languages: Sequence[str],
    values: Mapping[str, object],
    where: str,
    out: list[str],
) -> tuple[Part, ...]:
    """One prompt as its parts; a broken prompt still yields its key's entry, so the
    references to it are not reported again."""
    items = raw if isinstance(raw, list) and raw else [raw]
    parts: list[Part] = []
    for item in items:
        text, part_language = item, language
        if isinstance(item, Mapping):
            text, named = item.get("text"), item.get("language")
            for field in sorted(item.keys() - {"text", "language"}):
                out.append(f"{where} has a part with unknown field '{field}'")
            if isinstance(named, str) and named in languages:
                part_language = named
            else:
                out.append(f"{where} has a part in undeclared language {named!r}")
        if not isinstance(text, str) or not text.strip():
            out.append(f"{where} must be a non-empty string, or a list of texts and parts")
            continue
        for name in sorted({m for m in _PLACEHOLDER.findall(text) if m not in values}):
            out.append(f"{where} uses unknown placeholder {{{name}}}")
        # Parts are written on lines of their own; the spaces around them are layout.
        filled = _PLACEHOLDER.sub(lambda m: str(values.get(m[1], m[0])), text).strip()
        parts.append(Part(filled, part_language))
    return tuple(parts)


def parse_voices(raw: Any, languages: Sequence[str], out: list[str]) -> Mapping[str, str]:
    """The optional ``[voices]`` table: declared language -> voice name."""
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) and v for v in raw.values()):
        out.append('[voices] must be a table of "language" = "voice name"')
        return MappingProxyType({})
    for language in raw:
        if languages and language not in languages:
            out.append(f"[voices] language '{language}' is not declared in [flow] languages")
    return MappingProxyType(dict(raw))


def check_prompt_refs(
    refs: Sequence[tuple[str, str | None]], prompts: Prompts, out: list[str]
) -> None:
    """Every referenced key exists in every language, and so does every other key."""
    for where, key in refs:
        for language, texts in prompts.items():
            if key is not None and key not in texts:
                out.append(f"{where} '{key}' is missing in language '{language}'")
    referenced = {key for _, key in refs}
    for key in sorted({key for texts in prompts.values() for key in texts} - referenced):
        have = ", ".join(lang for lang, texts in prompts.items() if key in texts)
        for language, texts in prompts.items():
            if key not in texts:
                out.append(f"prompt '{key}' is missing in language '{language}' (has: {have})")
