"""The click commands ``fw paper``, ``fw status``, ``fw halt`` and ``fw resume``.

``live`` may not import ``strategies``, so :func:`make_commands` takes the composition root's
strategy resolver and returns the commands for ``framework/cli.py`` to register.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from framework.errors import FwError
from framework.strategy import Strategy

StrategyResolver = Callable[[str], Strategy]

_DB_HELP = "State database URL (default: FW_DB_URL, else sqlite under FW_HOME/state/fw.sqlite)."


class _LiveCommand(click.Command):
    """fw's own errors become one clean line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FwError as exc:
            error = click.ClickException(str(exc))
            error.exit_code = getattr(exc, "exit_code", 1)  # 74: storage failure (see service)
            raise error from exc


def make_commands(resolve_strategy: StrategyResolver,
                  reporter: Callable[..., Any] | None = None) -> list[click.Command]:
    """The live commands, bound to the composition root's strategy resolver.

    Parameters
    ----------
    resolve_strategy : callable
        ``name -> Strategy`` (registered name, path/file.py:Class or package.module:Class).
    reporter : callable, optional
        ``reporter(db_url, run_id, period, today) -> (path, headline)`` writes a paper run's
        weekly/monthly report (``reports`` renders it; ``live`` may not import it).

    Returns
    -------
    list of click.Command
        ``paper``, ``status``, ``halt``, ``resume``, ``backup``, ``restore`` and the
        ``service`` group.
    """
    paper = _paper_command(resolve_strategy, reporter)
    return [paper, _status_command(), _halt_command(), _resume_command(), _backup_command(),
            _restore_command(), _service_command(paper), _logs_command()]


def _split_symbols(values) -> tuple[str, ...] | None:
    out = tuple(s.strip() for v in values for s in v.split(",") if s.strip())
    return out or None


def _drift(text: str) -> float | None:
    if str(text).strip().lower() in ("off", "none", "no"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise click.BadParameter(f"{text!r}; expected seconds >= 0 or 'off'.",
                                 param_hint="--max-clock-drift")
    return value


def _store(db: str | None):
    from live.state import Store

    return Store(db)


def _paper_command(resolve_strategy: StrategyResolver, reporter=None) -> click.Command:
    @click.command(name="paper", cls=_LiveCommand)
    @click.argument("strategy", required=False)
    @click.option("--symbols", "-s", multiple=True, help="Symbols (repeat or comma-separate). "
                  "Default: the resumed run's, else SPY, else the embedded S&P 500 index.")
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                  help="Replay DIR/SYMBOL.csv[.gz] instead of the data store.")
    @click.option("--start", help="First bar to replay (ISO date).")
    @click.option("--end", help="Last bar to replay (ISO date, inclusive).")
    @click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                  help="Strategy parameter override (repeatable).")
    @click.option("--schedule", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                  help="Walk-forward schedule.json: parameters change at each fold's start.")
    @click.option("--speed", type=float, default=None,
                  help="Replay pace in bars per second (default: as fast as possible).")
    @click.option("--dry-run", is_flag=True, help="Record decisions and intended orders; send nothing.")
    @click.option("--risk-off", is_flag=True, help="Ignore the risk rules of config/trading_config.yaml.")
    @click.option("--risk", "risk_sets", multiple=True, metavar="NAME=VALUE",
                  help="Risk rule override, e.g. --risk max_position=0.5 (repeatable).")
    @click.option("--max-positions", type=int, default=None,
                  help="At most this many open positions (a risk rule; same as "
                  "--risk max_positions=N).")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--run-id", default=None,
                  help="Run name; an existing run is resumed (default: a new <strategy>-<time> run).")
    @click.option("--broker", type=click.Choice(["sim", "alpaca", "webull"]), default=None,
                  help="Default: broker.name of the YAML config (sim unless changed). "
                  "sim: replay stored bars against the built-in simulated broker (offline). "
                  "alpaca: Alpaca PAPER account and live bars (keys in APCA_API_KEY_ID / "
                  "APCA_API_SECRET_KEY). webull: Webull's TEST environment by default (no paper "
                  "account exists; WEBULL_APP_KEY / WEBULL_APP_SECRET / WEBULL_ACCOUNT_ID, token "
                  "approved in the Webull app; see docs/webull.md and `fw broker check`).")
    @click.option("--interval", default="1Day", show_default=True,
                  help="Bar interval: 1Min, 5Min, 15Min, 30Min, 1Hour or 1Day. Alpaca: the live "
                  "bars; sim: the replayed files' bar length (1Min reads SPY_1min.csv.gz).")
    @click.option("--warmup-bars", type=int, default=300, show_default=True,
                  help="History loaded before a new run's first decision (alpaca).")
    @click.option("--max-bars", type=int, default=None,
                  help="End the session after this many traded bars (alpaca; default: run until "
                  "SIGTERM/Ctrl-C).")
    @click.option("--poll", type=float, default=None,
                  help="Seconds between clock checks while waiting for a bar close "
                  "(default: trading.interval_seconds of the config).")
    @click.option("--settle", type=float, default=None,
                  help="Seconds after a bar close before reading it (default 3 intraday, 120 daily).")
    @click.option("--max-wait", type=float, default=600.0, show_default=True,
                  help="Seconds to wait for a missing bar after its close: intraday bars are then "
                  "skipped, a missing daily bar halts the run (stale data).")
    @click.option("--reports/--no-reports", default=None,
                  help="Weekly/monthly reports under FW_HOME/reports after each week's/month's "
                  "last session. Default: on for alpaca, off for a sim replay.")
    @click.option("--backup-every", default=None, metavar="INTERVAL",
                  help="Online backup of the state database and models into FW_HOME/backups "
                  "(newest 14 kept) this often, e.g. 12h, 1d; 'off' disables. Default: 1d for "
                  "alpaca, off for a sim replay. A failed backup alerts and trading goes on.")
    @click.option("--min-free-mb", type=click.FloatRange(0, None), default=100.0,
                  show_default=True,
                  help="Free disk space the state database needs: below it (or when the disk is "
                  "full or read-only) trading stops cleanly with an alert and exit code 74.")
    @click.option("--health-port", type=int, default=None,
                  help="Serve GET /health and /status on 127.0.0.1:N for monitors "
                  "(0 = any free port; /health is 503 when halted, and when a bar is overdue by more "
                  "than --health-max-lag).")
    @click.option("--health-max-lag", type=float, default=None,
                  help="Seconds a bar may be overdue (market hours) before /health fails.")
    @click.option("--max-clock-drift", default="5",
                  help="Seconds the local clock may differ from the broker's before trading halts; "
                  "'off' lets the broker's clock define market time.")
    @click.option("--model", "model_version", default=None, metavar="VERSION",
                  help="Learned strategies: registry version to trade (default: production, else "
                  "the latest; see fw ml status).")
    @click.option("--challenger", default=None, metavar="VERSION",
                  help="Learned strategies: version that predicts in shadow next to the traded one "
                  "(default: the registry's challenger); compare with fw ml compare.")
    @click.option("--retrain", type=click.Choice(["never", "weekly", "monthly"]), default="never",
                  show_default=True,
                  help="Learned strategies: refit on the latest bars before the first bar of each "
                  "week/month; the new version trades from that bar (fw ml status lists it).")
    @click.option("--retrain-bars", type=click.IntRange(100, None), default=756, show_default=True,
                  help="Bars each scheduled refit learns from (plus the warm-up).")
    def paper(strategy, symbols, data_dir, start, end, sets, schedule, speed, dry_run, risk_off,
              risk_sets, max_positions, db, run_id, broker, interval, warmup_bars, max_bars, poll, settle,
              max_wait, reports, backup_every, min_free_mb, health_port, health_max_lag, max_clock_drift, model_version,
              challenger, retrain, retrain_bars) -> None:
        """Paper-trade STRATEGY (default sma_cross); all state goes to the state database.

        With the default --broker sim, stored bars (--data-dir, --symbols, --start, --end) are
        replayed through the simulated broker, offline. With --broker alpaca the run trades an
        Alpaca paper account on live bars of --interval, waiting for each close on the XNYS
        calendar; it stops after --max-bars or on SIGTERM/Ctrl-C (after the bar in hand).

        Re-running with the same --run-id resumes the run from the database (recovery, then the
        bars not yet processed). `fw status`, `fw halt` and `fw resume` act on the run.
        """
        from live.command import PaperSpec, paper_strategy_name, run_paper

        if broker is None:  # the YAML config's broker.name (validated there: sim|alpaca|webull)
            from framework.config import load_config

            broker = load_config().broker.name
        if max_positions is not None:
            if max_positions < 1:
                raise click.BadParameter(f"{max_positions}; expected at least 1 position.",
                                         param_hint="--max-positions")
            risk_sets = (*risk_sets, f"max_positions={max_positions}")
        spec = PaperSpec(
            run_id=run_id, symbols=_split_symbols(symbols), data_dir=data_dir, start=start,
            end=end, sets=tuple(sets), schedule=schedule, speed=speed, dry_run=dry_run,
            risk_off=risk_off, risk_sets=tuple(risk_sets), db=db, broker=broker,
            interval=interval, warmup_bars=warmup_bars, max_bars=max_bars, poll=poll,
            settle=settle, max_wait=max_wait, max_clock_drift=_drift(max_clock_drift),
            model=model_version, challenger=challenger, retrain=retrain, retrain_bars=retrain_bars,
            backup_every=backup_every, reports=reports, min_free_mb=min_free_mb,
        )
        store = _store(db)
        strat = resolve_strategy(paper_strategy_name(spec, store, strategy))
        console = _console()
        from framework.options.strategy import OptionsStrategy

        if isinstance(strat, OptionsStrategy):  # option spreads: their own session loop
            from live.options_session import run_options_session

            _print_options_summary(console, run_options_session(strat, spec, store))
            return
        health = None
        if health_port is not None:
            from live.health import HealthServer

            health = HealthServer(_health_status(db, spec.run_id), port=health_port,
                                  max_lag_seconds=health_max_lag,
                                  interval=interval if broker != "sim" else None).start()
            click.echo(f"health endpoint: {health.url}/health", err=True)
        try:
            with _ProgressBar(console) as bar:
                summary = run_paper(strat, spec, store, progress=bar.start,
                                    reporter=reporter)
        finally:
            if health is not None:
                health.stop()
        _print_summary(console, summary)

    return paper


def _print_options_summary(console, s: Mapping[str, Any]) -> None:
    console.print(f"run {s['run_id']}: {s['status']} after {s['steps']} session(s); "
                  f"{s['n_trades']} spread(s) closed, P&L ${s['pnl']:,.2f}, {len(s['open'])} open"
                  + (f"; HALTED: {s['halted']}" if s.get("halted") else ""))
    for t in s["trades"][-10:]:
        console.print(f"  {t['entry_date']} -> {t['exit_date']} {t['kind']} {t['legs']}: "
                      f"{t['reason']}, P&L {t['pnl'] if t['pnl'] is None else round(t['pnl'], 2)}")


def _status_command() -> click.Command:
    @click.command(name="status", cls=_LiveCommand)
    @click.option("--run-id", default=None, help="Run to show (default: the latest).")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--json", "as_json", is_flag=True,
                  help="Print machine-readable JSON (for monitors): the same fields plus the "
                  "broker, the last error and the lag since the last bar.")
    def status(run_id, db, as_json) -> None:
        """Show a paper run: parameters, positions, cash, equity and P&L, kill switch and risk
        state, latest events and errors."""
        from live.command import latest_run_id, run_status

        store = _store(db)
        state = run_status(store, run_id or latest_run_id(store))
        if as_json:
            click.echo(_status_json(state, store))
        else:
            _print_status(_console(), state)

    return status


def _halt_command() -> click.Command:
    @click.command(name="halt", cls=_LiveCommand)
    @click.option("--run-id", default=None, help="Run to halt (default: the latest).")
    @click.option("--flatten", is_flag=True,
                  help="Also close every position at the next bar (when fw paper next runs).")
    @click.option("--db", default=None, help=_DB_HELP)
    def halt(run_id, flatten, db) -> None:
        """Stop a paper run from trading: kill switch HALTED, open orders canceled."""
        from live.command import halt_run, latest_run_id

        store = _store(db)
        run_id = run_id or latest_run_id(store)
        canceled = halt_run(store, run_id, flatten)
        click.echo(f"run {run_id}: HALTED; canceled {len(canceled)} open order(s)"
                   + ("; positions will be closed at the next bar" if flatten else "")
                   + ". `fw resume` trades again.")

    return halt


def _resume_command() -> click.Command:
    @click.command(name="resume", cls=_LiveCommand)
    @click.option("--run-id", default=None, help="Run to resume (default: the latest).")
    @click.option("--db", default=None, help=_DB_HELP)
    def resume(run_id, db) -> None:
        """Let a halted paper run trade again (kill switch ACTIVE)."""
        from live.command import latest_run_id, resume_run

        store = _store(db)
        run_id = run_id or latest_run_id(store)
        breaker = resume_run(store, run_id)
        click.echo(f"run {run_id}: ACTIVE.")
        if breaker is not None:
            click.echo(f"note: the risk rules' circuit breaker is {breaker}; it still limits "
                       "trading until its own conditions clear.")

    return resume


def _status_json(state: Mapping[str, Any], store) -> str:
    import json
    from datetime import UTC, datetime

    run = store.run(state["run_id"])
    last = state.get("last_bar")
    lag = None
    if last:
        lag = (datetime.now(UTC) - datetime.fromisoformat(str(last))).total_seconds()
    errors = state.get("errors") or []
    payload = {**state, "broker": (run or {}).get("config", {}).get("broker", "sim"),
               "lag_seconds": lag, "last_error": errors[0] if errors else None,
               "updated_at": (run or {}).get("updated_at")}
    return json.dumps(payload, default=str, indent=2, sort_keys=True)


def _logs_command() -> click.Command:
    @click.command(name="logs", cls=_LiveCommand)
    @click.argument("category", type=click.Choice(["data", "trades", "errors", "all"]),
                    default="all")
    @click.option("--since", default=None, help="Only lines at or after this ISO time/date.")
    @click.option("--run-id", default=None, help="Only this run's lines.")
    @click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl+C stops).")
    @click.option("--json", "as_json", is_flag=True, help="Print the JSON lines as stored.")
    def logs(category, since, run_id, follow, as_json) -> None:
        """Show the paper runs' structured logs (FW_HOME/logs): data (bars), trades (fills and
        orders), errors (errors, halts, mismatches), or all."""
        import json

        from live.logs import follow as follow_logs
        from live.logs import format_line, read_logs

        lines = (follow_logs(None, category, since, run_id=run_id) if follow
                 else read_logs(None, category, since, run_id))
        try:
            for line in lines:
                click.echo(json.dumps(line, default=str) if as_json else format_line(line))
        except KeyboardInterrupt:
            pass

    return logs


def _backup_command() -> click.Command:
    @click.command(name="backup", cls=_LiveCommand)
    @click.option("--to", "to_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="New or empty folder for the backup (default: FW_HOME/backups/<UTC time>, "
                  "where the newest 14 are kept).")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--no-models", is_flag=True, help="Leave out the model registry FW_HOME/models.")
    def backup(to_dir, db, no_models) -> None:
        """Back up the state database (consistent, safe while fw paper runs) and the model
        registry into a folder with a manifest of sha256 hashes."""
        from live.backup import backup_store

        for line in backup_store(db, to_dir, include_models=not no_models).lines():
            click.echo(line)

    return backup


def _restore_command() -> click.Command:
    @click.command(name="restore", cls=_LiveCommand)
    @click.argument("backup_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--yes", is_flag=True,
                  help="Really restore (default: a dry run that only shows what would change).")
    def restore(backup_dir, db, yes) -> None:
        """Check BACKUP_DIR (manifest, hashes) and show what restoring it would change; with
        --yes, set the current database aside as <db>.before-restore-<time> and restore.
        Stop the runner first."""
        from live.backup import restore_store

        for line in restore_store(backup_dir, db, dry_run=not yes).lines():
            click.echo(line)

    return restore


def _service_command(paper: click.Command) -> click.Group:
    @click.group(name="service")
    def service() -> None:
        """Run `fw paper` unattended as a systemd service (restart on failure, graceful stop)."""

    @service.command(name="install", cls=_LiveCommand,
                     context_settings={"ignore_unknown_options": True})
    @click.argument("strategy")
    @click.argument("paper_args", nargs=-1, type=click.UNPROCESSED)
    @click.option("--scope", type=click.Choice(["user", "system"]), default="user",
                  show_default=True, help="user: systemctl --user; system: /etc/systemd (root).")
    @click.option("--name", default=None, help="Unit name (default fw-paper-STRATEGY).")
    @click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Optional environment file of the service (default FW_HOME/.env).")
    @click.option("--force", is_flag=True, help="Replace an existing, different unit.")
    @click.option("--dry-run", is_flag=True,
                  help="Print the unit and the systemctl commands; change nothing. (fw paper's "
                  "own --dry-run goes after `--`.)")
    def install(strategy, paper_args, scope, name, env_file, force, dry_run) -> None:
        """Install and start a service running `fw paper STRATEGY [PAPER OPTIONS...]`.

        \b
        Example:
          fw service install sma_cross --broker alpaca --symbols SPY --interval 1Hour
        The run id defaults to the unit name, so a restart resumes the same run. Use absolute
        paths in PAPER OPTIONS: the service runs in FW_HOME.
        """
        from live.service import ServiceSpec
        from live.service import install as install_service

        # a bad option would otherwise surface as a restart every 30 s
        paper.make_context("paper", [strategy, *paper_args])
        spec = ServiceSpec(strategy, tuple(paper_args), scope=scope, name=name,
                           env_file=env_file.absolute() if env_file else None)
        result = install_service(spec, dry_run=dry_run, force=force)
        if dry_run:
            click.echo(result.unit_text)
            for path, text in result.companions:  # the heartbeat check and its timer
                click.echo(f"# {path.name}\n{text}")
        for line in result.lines():
            click.echo(line)

    @service.command(name="status", cls=_LiveCommand)
    @click.option("--name", default=None, help="Unit name (default: the only installed fw unit).")
    @click.option("--scope", type=click.Choice(["user", "system"]), default="user",
                  show_default=True)
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    def status(name, scope, db, as_json) -> None:
        """Show the service's systemd state and its run's status."""
        import json

        from live.service import status as service_status
        from live.service import unit_command

        name = name or _only_unit(scope)
        words = unit_command(name, scope) or []
        run_id = _option(words, "--run-id")

        def run_json() -> dict:
            from live.command import latest_run_id, run_status

            store = _store(db or _option(words, "--db"))
            state = run_status(store, run_id or latest_run_id(store))
            return json.loads(_status_json(state, store))

        got = service_status(name, scope, run_status_json=run_json)
        if as_json:
            click.echo(json.dumps(got, default=str, indent=2, sort_keys=True))
            return
        pid = f", pid {got['main_pid']}" if got["main_pid"] else ""
        click.echo(f"{got['unit']} ({scope}): {got['active_state']}/{got['sub_state']}{pid}, "
                   f"since {got['started_at'] or '-'}, {got['restarts']} restart(s), "
                   f"last result {got['result']}")
        beat = got["heartbeat"]
        if beat["installed"]:
            outcome = {0: "ok", 1: "silent"}.get(beat["last_exit_status"], beat["last_result"])
            click.echo(f"heartbeat {beat['timer']}: {beat['active_state']}/{beat['sub_state']}, "
                       f"last check {beat['last_trigger'] or 'not yet'}"
                       + (f" ({outcome})" if beat["last_trigger"] else ""))
        else:
            click.echo(f"heartbeat {beat['timer']}: not installed (`fw service install --force` "
                       "adds it)")
        run = got["run"]
        if run:
            click.echo(f"run {run['run_id']}: last bar {run['last_bar']}, kill switch "
                       f"{run['kill_switch']}, equity ${run['equity']:,.2f}")
        elif got["run_error"]:
            click.echo(f"run: {got['run_error']}")

    @service.command(name="heartbeat", cls=_LiveCommand)
    @click.option("--run-id", default=None, help="Run to check (default: the latest).")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--grace", type=click.FloatRange(min=0), default=None,
                  help="Seconds a bar may be late after its close before the run counts as "
                  "silent (default: 663 intraday, 780 daily).")
    @click.option("--realert", type=click.FloatRange(min=0), default=3600.0, show_default=True,
                  help="Seconds between repeated alerts while the run stays silent.")
    @click.option("--name", default=None,
                  help="The service's unit, named in the alert's hints.")
    @click.option("--scope", type=click.Choice(["user", "system"]), default="user",
                  show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    @click.option("--now", "at", default=None, hidden=True,
                  help="Judge as of this ISO time instead of the clock (tests, replays).")
    @click.pass_context
    def heartbeat(ctx, run_id, db, grace, realert, name, scope, as_json, at) -> None:
        """Check once that a paper run still processes bars; alert when it has been silent
        too long in market hours (and once when bars resume).

        The timer that `fw service install` adds runs this every 5 minutes. Exit status 0:
        ok, recovered or idle (finished or stopped run, market closed); 1: silent.
        """
        import json
        from datetime import UTC, datetime

        from live.command import latest_run_id
        from live.heartbeat import HeartbeatSpec, check_heartbeat, heartbeat_alerter

        store = _store(db)
        run_id = run_id or latest_run_id(store)
        spec = HeartbeatSpec(grace_seconds=grace, realert_seconds=realert, unit=name,
                             scope=scope)
        alerter = heartbeat_alerter(store, run_id)
        try:
            result = check_heartbeat(store, run_id, at or datetime.now(UTC), alerter, spec)
        finally:
            alerter.close()
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True) if as_json
                   else result.line())
        if result.alerted and not alerter.spec.enabled:
            click.echo("note: no alert was sent: alerts are off (notifications.enabled in the "
                       "config, channels in FW_APPRISE_URLS).", err=True)
        if result.exit_code:
            ctx.exit(result.exit_code)

    @service.command(name="uninstall", cls=_LiveCommand)
    @click.option("--name", default=None, help="Unit name (default: the only installed fw unit).")
    @click.option("--scope", type=click.Choice(["user", "system"]), default="user",
                  show_default=True)
    @click.option("--dry-run", is_flag=True, help="Print the commands; change nothing.")
    def uninstall(name, scope, dry_run) -> None:
        """Stop the service (gracefully), disable it and remove its unit. The run's state stays
        in the database."""
        from live.service import uninstall as uninstall_service

        for line in uninstall_service(name or _only_unit(scope), scope, dry_run=dry_run).lines():
            click.echo(line)

    return service


def _only_unit(scope: str) -> str:
    from framework.errors import ConfigError
    from live.service import installed_units, unit_dir

    units = installed_units(scope)
    if len(units) != 1:
        raise ConfigError(f"{len(units)} fw units in {unit_dir(scope)} "
                          f"({', '.join(units) or 'none'}); expected exactly one. Pass --name "
                          "(and --scope system for system units).")
    return units[0]


def _option(words: list[str], flag: str) -> str | None:
    for i, word in enumerate(words):
        if word == flag and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def _health_status(db: str | None, run_id: str | None):
    """A status callable for HealthServer: the run's `fw status --json` fields, per request."""
    import json

    from live.command import latest_run_id, run_status

    store = _store(db)  # its own engine: requests come from the health server's thread

    def read() -> dict:
        state = run_status(store, run_id or latest_run_id(store))
        return json.loads(_status_json(state, store))

    return read


# -- output ----------------------------------------------------------------------------------------
def _console():
    from rich.console import Console

    return Console()


class _ProgressBar:
    """A rich progress bar over the replayed bars (silent when stdout is not a terminal)."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
            console=console, disable=not console.is_terminal,
        )
        self._task = None

    def __enter__(self) -> _ProgressBar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def start(self, total: int) -> Callable[[int, Any], None]:
        self._task = self._progress.add_task("", total=total)

        def advance(_n_bars: int, bar) -> None:
            self._progress.update(self._task, advance=1, description=str(bar.time.date()))

        return advance


def _print_summary(console, s) -> None:
    from rich.table import Table

    title = f"paper run {s.run_id} ({s.strategy}{', resumed' if s.resumed else ''}" \
            f"{', DRY RUN: nothing sent' if s.dry_run else ''})"
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    rows = [
        # new bars include warm-up history read before trading; traded = equity snapshots
        ("bars processed", f"{s.new_bars} new, {s.total_bars} traded in the run"),
        ("orders", f"{s.orders}" + (" (intended only)" if s.dry_run else "")),
        ("fills", str(s.fills)),
        ("final equity", f"${s.equity:,.2f}"),
        ("return", f"{s.total_return:.2%} on ${s.initial_cash:,.0f}"),
        ("costs", f"${s.costs:,.2f}"),
        ("kill switch", s.kill_switch + (f" (risk breaker {s.risk_breaker})" if s.risk_breaker else "")),
        ("database", s.db_url),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"`fw status --run-id {s.run_id}` shows positions and events.")


def _print_status(console, st: Mapping[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"run {st['run_id']} ({st['strategy']}, {st['status']})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    positions = ", ".join(f"{s} {q:g}" for s, q in sorted(st["positions"].items())) or "flat"
    risk = st["kill_switch"] + (f" (risk breaker {st['risk_breaker']})" if st["risk_breaker"] else "")
    rows = [
        ("parameters", str(st["parameters"])), ("symbols", ", ".join(st["symbols"])),
        ("started", str(st["started"])), ("last bar", str(st["last_bar"])),
        ("bars", str(st["bars"])), ("positions", positions), ("cash", f"${st['cash']:,.2f}"),
        ("equity", f"${st['equity']:,.2f}"),
        ("P&L", f"${st['pnl']:,.2f} ({st['return']:.2%} on ${st['initial_cash']:,.0f})"),
        ("orders", f"{st['orders']} ({st['open_orders']} open)" + (" dry run" if st["dry_run"] else "")),
        ("fills", f"{st['fills']} (costs ${st['costs']:,.2f})"), ("kill switch", risk),
        ("risk rules", st["risk"]), ("database", st["db_url"]),
    ]
    if st.get("uptime"):
        up = st["uptime"]
        rows.append(("uptime", "n/a" if up["ratio"] is None else
                     f"{up['ratio']:.1%} of {up['market_seconds'] / 3600:.1f} market hours "
                     f"(longest outage {up['longest_gap_seconds'] / 3600:.1f} h)"))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print("latest events:")
    for e in st["events"]:
        console.print(f"  {e['time'][:19]}  {e['kind']:<18} {e['message']}", markup=False)
    if st["errors"]:
        console.print("latest errors:")
        for e in st["errors"]:
            console.print(f"  {e['time'][:19]}  {e['message']}: {e['detail']}", markup=False)
