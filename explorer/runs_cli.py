"""``explorer runs list|show|delete|export``: the trained runs in the store, with their analyses."""
from __future__ import annotations

import json

from explorer.runs.describe import describe_model
from explorer.train_cli import add_store_option, apply_store_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "runs", help="list, show or delete trained runs",
        description="The runs of the run store (EXPLORER_STORE/runs): status (complete, partial, "
        "running, corrupt), accuracy, configuration and provenance.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one line per run",
                                 description="One line per run, most recent first; damaged runs "
                                 "are listed as corrupt with the reason.")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add_store_option(listing)
    listing.set_defaults(func=_list)
    show = actions.add_parser("show", help="configuration, provenance and metrics of a run",
                              description="Configuration, provenance and per-epoch metrics of a "
                              "run (its id or a unique prefix of it).")
    show.add_argument("id", help="run id or a unique prefix")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    add_store_option(show)
    show.set_defaults(func=_show)
    delete = actions.add_parser("delete", help="delete a run",
                                description="Delete a run's folder with its analyses (refused while a "
                                "job writes it).")
    delete.add_argument("id", help="run id or a unique prefix")
    delete.add_argument("--force", action="store_true", help="delete even if a job holds its lock")
    add_store_option(delete)
    delete.set_defaults(func=_delete)
    export = actions.add_parser(
        "export", help="copy a complete run for shipping (weights and analyses)",
        description="Copy a complete run to DIR/<id>/ with the analyses of its weights but without its "
        "checkpoint, its provenance marked "
        "as shipped with NOTE (how it was made). The project's demo runs are made this way into "
        "explorer/shipped_runs.")
    export.add_argument("id", help="run id or a unique prefix")
    export.add_argument("--to", required=True, metavar="DIR", help="destination folder")
    export.add_argument("--note", default="", help="how the run was made (e.g. its command)")
    add_store_option(export)
    export.set_defaults(func=_export)


def _summary(info) -> dict:
    return {"id": info.id, "status": info.status, "model": describe_model(info.config),
            "epochs_done": info.epochs_done, "epochs": info.epochs, "test_acc": info.accuracy,
            "error": info.error, "path": str(info.path), "shipped": info.shipped,
            "analyses": [_analysis_summary(a) for a in info.analyses]}


def _analysis_summary(analysis) -> dict:
    return {"name": analysis.name, "key": analysis.key, "params": analysis.params,
            "weights_sha256": analysis.weights_sha256, "current": analysis.current,
            "error": analysis.error,
            "path": str(analysis.path)}


def _list(args) -> None:
    from explorer.runs import RunStore

    apply_store_option(args)
    store = RunStore()
    infos = store.list()
    if args.json:
        print(json.dumps([_summary(i) for i in infos], indent=1))
        return
    if not infos:
        print(f"no runs in {store.root}")
        return
    for info in infos:
        acc = f"{info.accuracy:.2%}" if info.accuracy is not None else "-"
        epochs = f"{info.epochs_done}/{info.epochs if info.epochs is not None else '?'}"
        line = f"{info.id:<22} {info.status:<9} {epochs:>8} {acc:>7}  {describe_model(info.config)}"
        if info.shipped:
            line += "  [shipped]"
        if info.error:
            line += f"  ({info.error})"
        print(line)


def _show(args) -> None:
    from explorer.runs import RunStore

    apply_store_option(args)
    info = RunStore().info(args.id)
    if args.json:
        print(json.dumps({**_summary(info), "config": info.config, "metrics": info.metrics,
                          "provenance": info.provenance}, indent=1))
        return
    print(f"{info.id}  {info.status}  {describe_model(info.config)}  ({info.path})")
    if info.error:
        print(f"  {'problem' if info.status == 'corrupt' else 'note'}: {info.error}")
    if info.config:
        print("config: " + json.dumps(info.config, sort_keys=True))
    for session in info.provenance.get("sessions", []):
        git = session.get("git") or {}
        print(f"session {session.get('started_at')}: {session.get('device')} amp={session.get('amp')} "
              f"torch {session.get('packages', {}).get('torch')} git {str(git.get('commit'))[:10]}"
              f"{' (dirty)' if git.get('dirty') else ''}")
    if "wall_seconds" in info.provenance:
        print(f"wall time {info.provenance['wall_seconds']:.1f} s")
    for analysis in info.analyses:
        params = json.dumps(analysis.params, sort_keys=True) if analysis.params is not None else ""
        state = (f"  (damaged: {analysis.error})" if analysis.error
                 else "" if analysis.current else "  (stale: computed from older weights)")
        print(f"analysis {analysis.name} {analysis.key} {params}{state}")
    for m in info.metrics or []:
        try:
            from explorer.training.trainer import format_epoch

            print(format_epoch(m, info.epochs))
        except (TypeError, ValueError, KeyError):  # a hand-edited record: show it raw
            print(json.dumps(m))


def _delete(args) -> None:
    from explorer.runs import RunStore

    apply_store_option(args)
    store = RunStore()
    run_id = store.resolve(args.id)
    store.delete(run_id, force=args.force)
    print(f"deleted {run_id}")


def _export(args) -> None:
    from explorer.runs import RunStore

    apply_store_option(args)
    target = RunStore().export(args.id, args.to, note=args.note)
    print(f"exported to {target}")
