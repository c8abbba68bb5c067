"""What a flow says: prompt tables and voices, checked and pre-rendered at load time.

``[prompts."de-DE"]`` maps prompt keys to texts. Texts may use the placeholders
``{pin_length}`` and ``{attempts_per_call}``, filled in once here so the engine only looks
texts up. ``[voices]`` maps a language to a Twilio voice name. Every function appends its
problems (without the file name) to ``out`` instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

Prompts = Mapping[str, Mapping[str, str]]
"""Language -> prompt key -> rendered text."""


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
    rendered: dict[str, Mapping[str, str]] = {}
    for language in languages:
        table = raw.get(language)
        if not isinstance(table, Mapping):
            out.append(f"[prompts] has no table of texts for language '{language}'")
            continue
        rendered[language] = MappingProxyType(_render(table, language, values, out))
    return MappingProxyType(rendered)


def _render(
    table: Mapping[str, Any], language: str, values: Mapping[str, object], out: list[str]
) -> dict[str, str]:
    texts: dict[str, str] = {}
    for key, text in table.items():
        where = f"prompt '{key}' in language '{language}'"
        if not isinstance(text, str) or not text.strip():
            out.append(f"{where} must be a non-empty string")
            texts[key] = str(text)  # keeps references from reporting it again
            continue
        for name in sorted({m for m in _PLACEHOLDER.findall(text) if m not in values}):
            out.append(f"{where} uses unknown placeholder {{{name}}}")
        texts[key] = _PLACEHOLDER.sub(lambda m: str(values.get(m[1], m[0])), text)
    return texts


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
