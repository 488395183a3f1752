"""The ``crowdbridge`` command line (typer + rich). Commands parse input, call one domain
function and print the result; ``--json`` prints machine-readable output on read commands.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.console import Console
from rich.table import Table

from connectors.errors import CrowdbridgeError
from service.cli.campaign import campaign_app
from service.cli.common import print_json
from service.cli.models import export_pairs, models_app, retrain
from service.settings import get_settings

__all__ = ["app", "check_worker_queues", "main"]

app = typer.Typer(help="crowdbridge: RLHF human feedback from labeling vendors to reward models.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(campaign_app, name="campaign")
app.add_typer(models_app, name="models")
app.command("retrain")(retrain)
app.command("export-pairs")(export_pairs)
console = Console(stderr=True)
out = Console()


@app.command()
def demo(
    items: Annotated[int, typer.Option(help="pairwise items (hh-rlhf pairs shipped with the package)")] = 600,
    raters: Annotated[int, typer.Option(help="raters per item")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 280.0,
    faults: Annotated[bool, typer.Option(help="inject vendor faults (5xx, 429, duplicates, malformed)")] = True,
    serve: Annotated[bool, typer.Option(help="keep the dashboard up after the run, until Ctrl-C")] = False,
    port: Annotated[int, typer.Option(help="port of the API and dashboard (0: any free port)")] = 0,
    vendor: Annotated[str, typer.Option(help="simulated, or label_studio (a local Label Studio, if installed)")]
    = "simulated",
) -> None:
    """Run the whole loop on embedded defaults: vendor, broker and worker are started and stopped here."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from connectors.label_studio.local import LabelStudioUnavailable
    from service.demo import DemoOptions, run_demo

    settings = get_settings()
    run_dir = settings.data_dir / "demo" / time.strftime("%Y%m%d-%H%M%S")
    if settings.database_url is None and settings.broker_url is None:
        # a fresh, self-contained run: its own SQLite file and broker socket
        os.environ["CROWDBRIDGE_DATA_DIR"] = str(run_dir)
        get_settings.cache_clear()
        settings = get_settings()
    if vendor not in ("simulated", "label_studio"):
        console.print(f"[red]error[/]: --vendor must be simulated or label_studio, not {vendor!r}")
        raise typer.Exit(2)
    options = DemoOptions(items=items, raters=raters, timeout_s=timeout, api_port=port, vendor=vendor,
                          **({} if faults else {"faults": {}}))
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=as_json and not console.is_terminal) as bars:
        tasks = {
            "submitted": bars.add_task("batches pushed to vendor", total=None),
            "stored": bars.add_task("judgments stored", total=items * raters),
            "consensus": bars.add_task("items reconciled", total=items),
            "jobs_done": bars.add_task("reward-model trainings", total=None),
        }

        def show(state: dict[str, Any]) -> None:
            bars.update(tasks["submitted"], completed=state["submitted"], total=state["batches"])
            bars.update(tasks["stored"], completed=state["stored"], total=max(state["expected"], 1))
            bars.update(tasks["consensus"], completed=state["consensus"])
            bars.update(tasks["jobs_done"], completed=state["jobs_done"],
                        total=state["jobs_done"] + state["jobs_active"] or None)

        def dashboard(url: str, token: str) -> None:
            console.print(f"dashboard: [bold]{url}[/] (sign in with token [bold]{token}[/])")

        served: list[bool] = []

        def keep_serving(summary: dict[str, Any]) -> None:
            served.append(True)
            bars.stop()
            print_json(summary) if as_json else _print_demo_summary(summary)
            console.print(f"serving the dashboard at {summary['dashboard']['url']} until Ctrl-C")

        try:
            summary = run_demo(settings, options, progress=show, run_dir=run_dir, on_dashboard=dashboard,
                               serve=keep_serving if serve else None)
        except LabelStudioUnavailable as exc:  # never installed silently (~1 GB): say how instead
            console.print(f"[red]Label Studio is not available[/]: {escape(str(exc))}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            if served:  # Ctrl-C after the run is how --serve ends
                raise typer.Exit(0) from None
            console.print("[yellow]interrupted: every process the demo started has been stopped[/]")
            raise typer.Exit(130) from None
    if as_json:
        print_json(summary)
        return
    _print_demo_summary(summary)
    console.print(f"dashboard (while running): {summary['dashboard']['url']}; rerun with --serve to keep it up")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def _print_demo_summary(summary: dict[str, Any]) -> None:
    table = Table(title="crowdbridge demo", show_header=False)
    reward = summary.get("reward_model") or {}
    rows = [
        ("items x raters", f"{summary['items']} x {summary['raters_per_item']}"),
        ("judgments stored / produced by vendor", f"{summary['judgments']} / {summary['judgments_produced_by_vendor']}"),
        ("quarantined / malformed sent", f"{summary['quarantined']} / {summary['malformed_sent_by_vendor']}"),
        ("batches (extra rounds)", f"{summary['batches']} ({summary['extra_batches']})"),
        ("vendor submits / batches created", f"{summary['vendor_submit_requests']} / {summary['vendor_batches_created']}"),
        ("vendor turnaround p50 / p95 (s)",
         f"{_fmt(summary['vendor_turnaround_s']['p50'])} / {_fmt(summary['vendor_turnaround_s']['p95'])}"),
        ("consensus accuracy MV / DS / auto (hidden truth)",
         f"{_fmt(summary['consensus_accuracy']['mv'])} / {_fmt(summary['consensus_accuracy']['ds'])} / "
         f"{_fmt(summary['consensus_accuracy'].get('auto'))} (auto chose {summary['consensus_method']['chosen']})"),
        ("Krippendorff's alpha (nominal)", _fmt(summary["krippendorff_alpha"])),
        ("contested items", _fmt(summary["contested_items"])),
        ("reward model version", _fmt(reward.get("version"))),
        ("reward model held-out accuracy", _fmt(reward.get("heldout_accuracy"))),
        ("reward model accuracy, unseen human pairs", _fmt(reward.get("human_test_accuracy"))),
        ("wall time (s)", _fmt(summary["wall_time_s"])),
    ]
    for key, value in rows:
        table.add_row(key, value)
    for stage, at in summary["stages_s"].items():
        table.add_row(f"  stage done at: {stage}", f"{at:.1f} s")
    out.print(table)


def check_worker_queues(queues: str) -> list[str]:
    """Warnings for ``--queues``; an unknown queue name is an error (a worker on it would wait forever)."""
    from service.domain.outbox import KNOWN_QUEUES

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in KNOWN_QUEUES]
    if unknown or not names:
        raise typer.BadParameter(f"unknown queue(s) {unknown or [queues]}: choose from {', '.join(KNOWN_QUEUES)}",
                                 param_hint="--queues")
    if "default" in names and "reconcile" not in names:
        return ["reconciliations are routed to the 'reconcile' queue and this worker does not consume it: make "
                "sure another worker does (--queues default,reconcile)"]
    return []


@app.command()
def worker(
    queues: Annotated[str, typer.Option(
        help="comma-separated queues: default (push, poll), reconcile, training (GPU machines: training only)")
    ] = "default,reconcile,training",
    concurrency: Annotated[int, typer.Option(help="pool processes")] = 2,
    beat: Annotated[bool, typer.Option(help="also run the periodic scheduler (run it on one worker only)")] = True,
) -> None:
    """Run a Celery worker on the configured broker and database (starts the embedded broker if needed)."""
    from service.broker import EmbeddedBroker
    from service.storage.db import migrate

    for warning in check_worker_queues(queues):
        console.print(f"[yellow]warning:[/] {warning}")
    settings = get_settings()
    migrate(settings.resolved_database_url)
    broker = EmbeddedBroker(settings.broker_socket) if settings.embedded_broker else None
    if broker is not None:
        broker.start()
    from workers.app import app as celery_app

    argv = ["worker", "-Q", queues, "-c", str(concurrency), "--loglevel", "INFO"] + (["-B"] if beat else [])
    try:
        celery_app.worker_main(argv)
    finally:
        if broker is not None:
            broker.stop()


@app.command("vendor-sim")
def vendor_sim(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8765,
    state: Annotated[Path, typer.Option(help="the vendor's own SQLite file (kept across restarts)")] = Path(
        "vendor-sim.db"),
    api_key: Annotated[str, typer.Option(envvar="CROWDBRIDGE_SIMULATED__API_KEY")] = "dev-key-change-me",
    truth: Annotated[list[Path] | None, typer.Option(help="JSONL(.gz) of chosen/rejected or text/quality")] = None,
    raters: Annotated[int, typer.Option(help="size of the rater pool")] = 60,
    spammer_share: Annotated[float, typer.Option()] = 0.1,
    position_bias: Annotated[float, typer.Option()] = 0.05,
    turnaround: Annotated[float, typer.Option(help="median seconds until a judgment is returned")] = 2.0,
    error_rate: Annotated[float, typer.Option(help="share of requests answered 503")] = 0.0,
    rate_limit_rate: Annotated[float, typer.Option(help="share answered 429 + Retry-After")] = 0.0,
    slow_rate: Annotated[float, typer.Option(help="share answered slowly")] = 0.0,
    duplicate_rate: Annotated[float, typer.Option(help="share of judgments delivered twice")] = 0.0,
    malformed_rate: Annotated[float, typer.Option(help="malformed records per judgment")] = 0.0,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Serve the simulated crowd vendor over HTTP on 127.0.0.1."""
    from connectors.simulated.crowd import CrowdConfig
    from connectors.simulated.server import FaultConfig, serve

    crowd = CrowdConfig(n_raters=raters, spammer_share=spammer_share, position_bias=position_bias,
                        turnaround_s=turnaround, seed=seed)
    faults = FaultConfig(error_rate=error_rate, rate_limit_rate=rate_limit_rate, slow_rate=slow_rate,
                         duplicate_rate=duplicate_rate, malformed_rate=malformed_rate)
    serve(host=host, port=port, state_path=state, api_key=api_key, crowd=crowd, faults=faults, truth_files=truth)


@app.command("db-upgrade")
def db_upgrade() -> None:
    """Apply database migrations (Alembic) to the configured database."""
    from service.storage.db import migrate

    migrate(get_settings().resolved_database_url)
    console.print("schema is up to date")


connectors_app = typer.Typer(help="Vendor connectors.", no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")


@connectors_app.command("list")
def connectors_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every registered connector and what it can do."""
    from dataclasses import asdict

    from connectors.registry import available, get_connector_class

    rows = []
    for name in available():
        try:
            caps = asdict(get_connector_class(name).capabilities)
            caps["kinds"] = [k.value for k in caps["kinds"]]
        except CrowdbridgeError as exc:
            caps = {"error": str(exc)}
        rows.append({"name": name, **caps})
    if as_json:
        print_json(rows)
        return
    table = Table("connector", "per-rater identity", "webhooks", "idempotent submit", "cancel", "cost")
    for r in rows:
        table.add_row(r["name"], *(("yes" if r.get(k) else "no") for k in
                                   ("per_rater_identity", "webhooks", "idempotent_submit", "cancel", "cost")))
    out.print(table)


def main() -> None:
    try:
        app()
    except CrowdbridgeError as exc:
        console.print(f"[red]error[/] ({exc.code}): {escape(str(exc))}")
        sys.exit(2)
    except ValueError as exc:  # AggregationInputError and other input errors carry a message that says what to fix
        console.print(f"[red]error[/]: {escape(str(exc))}")
        sys.exit(2)


from service.cli.reconcile import agreement as _agreement, reconcile as _reconcile  # noqa: E402

app.command("reconcile")(_reconcile)
app.command("agreement")(_agreement)


from service.cli.api import analytics, api, audit, tokens_app  # noqa: E402  (the service API's commands)

app.add_typer(tokens_app, name="tokens")
app.command("api")(api)
app.command("audit")(audit)
app.command("analytics")(analytics)


from service.cli import reads  # noqa: E402  (read commands mirroring the API's read routes)

campaign_app.command("list")(reads.campaigns)
campaign_app.command("batches")(reads.batches)
campaign_app.command("judgments")(reads.judgments)
campaign_app.command("consensus")(reads.consensus)
campaign_app.command("agreement")(reads.agreement)
app.command("retrain-jobs")(reads.retrain_jobs)

from service.cli.sla import sla_app, timeseries  # noqa: E402  (SLA thresholds and the analytics time series)

app.add_typer(sla_app, name="sla")
app.command("analytics-timeseries")(timeseries)
