"""``ivr flow check`` and ``ivr flow graph``: review a call flow before it goes live.

Both read FILE, or the configured ``[server] flow_file`` (the default flow without any
config). PIN length and attempts per call come from the config when there is one,
because prompts use them; the built-in defaults otherwise.
"""

from __future__ import annotations

from pathlib import Path

import click

from ivr.cli.errors import fail, load_config
from ivr.config import Settings
from ivr.exceptions import FlowError
from ivr.flow.graph import flow_graph, to_dot, to_mermaid
from ivr.flow.graph_svg import to_svg
from ivr.flow.model import Flow, load_flow

RENDERERS = {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg}


def _settings(config_path: str | None) -> Settings:
    if config_path is None:
        return Settings()  # defaults only: nothing to validate, no secrets needed
    return load_config(config_path, web=False)  # the graph serves no webhook


def _load(config_path: str | None, file: str | None) -> tuple[Path, Flow]:
    """The flow at FILE (or the configured one); every problem printed, then exit 1."""
    settings = _settings(config_path)
    path = Path(file) if file else settings.flow_path()
    if not path.is_file():
        fail(f"flow file {path} does not exist: pass an existing FILE or set [server] flow_file")
    try:
        flow = load_flow(
            path,
            pin_length=settings.pin.length,
            attempts_per_call=settings.lockout.attempts_per_call,
        )
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(problem)
        count = len(exc.problems)
        fail(f"{path}: {count} problem{'s' if count != 1 else ''}; fix them and run this again")
    return path, flow


@click.group("flow")
def flow() -> None:
    """Check and draw call flows (flows/*.toml)."""


@flow.command("check")
@click.argument("file", required=False)
@click.pass_obj
def check(config_path: str | None, file: str | None) -> None:
    """Validate FILE and print every problem with its location."""
    path, loaded = _load(config_path, file)
    click.echo(f"{path}: OK ({len(loaded.nodes)} nodes, languages {', '.join(loaded.languages)})")


@flow.command("graph")
@click.argument("file", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(RENDERERS)),
    default="mermaid",
    show_default=True,
    help="mermaid (Markdown), dot (Graphviz) or svg (drawn here, no tools needed).",
)
@click.option("--output", "-o", help="Write to this file instead of standard output.")
@click.pass_obj
def graph(config_path: str | None, file: str | None, fmt: str, output: str | None) -> None:
    """Draw FILE: nodes, keys on the edges, and how each route reaches an agent."""
    _, loaded = _load(config_path, file)
    text = RENDERERS[fmt](flow_graph(loaded))
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
