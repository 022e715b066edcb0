"""``fw config``: show the resolved trading configuration and validate config files.

The click group is registered by the composition root (``framework.cli``) with
``main.add_command(config)``. Errors surface as one clean ``click.ClickException`` line block,
never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from framework.config import load_config, load_secrets, resolve_config_path
from framework.errors import ConfigError
from framework.paths import fw_home


@click.group("config")
def config() -> None:
    """Show and validate the trading configuration (config/trading_config.yaml)."""


@config.command("show")
@click.option(
    "--path",
    "path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML file to read (default: $FW_CONFIG, else config/trading_config.yaml).",
)
def show(path: Path | None) -> None:
    """Print the resolved config as YAML, the secrets (masked) and FW_HOME."""
    try:
        resolved = resolve_config_path(path)
        trading_config = load_config(path)
        secrets = load_secrets()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"# config file: {resolved}")
    click.echo(trading_config.to_yaml().rstrip())
    click.echo("")
    click.echo("# secrets (environment, ./.env, FW_HOME/.env; values masked)")
    for name, masked in secrets.masked().items():
        source = secrets.sources.get(name)
        click.echo(f"{name} = {masked}" + (f"  (from {source})" if source else ""))
    click.echo("")
    click.echo(f"FW_HOME = {fw_home()}")


@config.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
def validate(path: Path) -> None:
    """Check a config file; print "ok: PATH" or every problem and exit 1."""
    try:
        load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"ok: {path}")
