"""`docstream`: the command line of producers and operators.

docstream publish PATH… [-]            send documents (files, folders, JSONL, stdin)
docstream worker [--no-api]            the pipeline (and, by default, the API beside it)
docstream api                          the API alone (needs a Qdrant server: QDRANT_URL)
docstream dlq list|show|redrive|purge  dead letters (docs/OPERATIONS.md)
docstream status [--json]              Kafka offsets and lag, breakers, freshness, stores
docstream rebuild [--target …]         rebuild an index into a new generation, then switch
docstream rebuild --from-time T        re-apply events since T to the active index (a repair)
docstream replay --topic documents     re-chunk and re-embed into a new generation, then switch
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.correlation import mint_correlation_id, mint_traceparent
from core.settings import Settings
from ops import admin_client

if TYPE_CHECKING:
    from ops.dlq.letters import Ref
    from ops.dlq.topics import DeadLetterTopics


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from core.kafka.admin import ensure_topics
    from ops.publishing.publisher import DocumentPublisher, Progress, PublishReport
    from ops.publishing.sources import Rejected, Skipped, delete_events, read_path
    from schemas.codec import Codecs

    if not args.paths and not args.delete:
        print("nothing to publish: give PATHs, - for stdin, or --delete DOC_ID…", file=sys.stderr)
        return 2
    if not args.dry_run and _kafka_refuses(settings, "publish"):
        return 2
    correlation_id = args.correlation_id or mint_correlation_id()
    items = itertools.chain(
        (item for path in args.paths for item in read_path(Path(path), args.glob)),
        delete_events(args.delete or []),
    )
    if args.dry_run:
        report = PublishReport()
        for item in items:
            if isinstance(item, Rejected):
                report.failed.append(item)
            elif isinstance(item, Skipped):
                report.skipped.append(item)
            else:
                report.sent += 1
    else:
        try:
            ensure_topics(settings.kafka, [settings.kafka.topics.documents], timeout_s=args.timeout)
        except Exception as exc:
            print(
                f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {exc}", file=sys.stderr
            )
            return 1
        codec = Codecs.create(settings.schema_registry_url).documents
        publisher = DocumentPublisher(
            settings.kafka, codec, correlation_id, mint_traceparent(), args.timeout
        )
        report = publisher.publish(items, Progress(enabled=args.progress))
    print(report.summary(), file=sys.stderr)
    result = {
        "correlation_id": correlation_id,
        "sent": report.sent,
        "skipped": len(report.skipped),
        "failed": len(report.failed),
        "dry_run": args.dry_run,
    }
    print(json.dumps(result))
    return 0 if report.ok else 1


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.release import check, release

    if args.action == "release":
        for path in release():
            print(f"released {path.name}")
        return 0
    failed = False
    for result in check():
        if result.problems:
            failed = True
            print(f"{result.name}: INCOMPATIBLE with v{result.released_version}")
            for problem in result.problems:
                print(f"  - {problem}")
        elif result.released_version is None:
            print(f"{result.name}: never released (run `docstream schemas release`)")
            failed = True
        else:
            state = "changed, compatible" if result.changed else "unchanged"
            print(f"{result.name}: {state} (last released v{result.released_version})")
    return 1 if failed else 0


def _kafka_refuses(settings: Settings, command: str) -> bool:
    """True (and said on stderr) when Kafka can never accept this client as
    configured: a wrong password, an untrusted certificate, a wrong protocol."""
    from core.kafka.connect import diagnose

    verdict = diagnose(settings.kafka)
    if verdict is not None:
        print(f"docstream {command}: {verdict}", file=sys.stderr)
    return verdict is not None


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from ops.composition import run_worker

    return run_worker(settings, with_api=not args.no_api)


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from ops.composition import run_api

    return run_api(settings)


def _dlq_sources(args: argparse.Namespace) -> list[str]:
    from ops.dlq.letters import SOURCES, STAGE_SOURCE

    if args.topic:
        return list(dict.fromkeys(args.topic))
    if getattr(args, "stage", None):
        return [STAGE_SOURCE[args.stage]]
    return list(SOURCES)


def _dlq(args: argparse.Namespace, settings: Settings) -> int:
    from core.logs import configure_logging
    from ops.dlq import letters as dlq
    from ops.dlq.topics import DeadLetterTopics
    from schemas.codec import Codecs

    configure_logging(settings.log_level)
    if _kafka_refuses(settings, "dlq"):
        return 2
    codecs = Codecs.create(settings.schema_registry_url)
    topics = DeadLetterTopics(settings, codecs, timeout_s=args.timeout)
    try:
        refs = [dlq.parse_ref(r) for r in getattr(args, "refs", [])]
    except ValueError as exc:
        print(f"dlq: {exc}", file=sys.stderr)
        return 2
    handlers = {"list": _dlq_list, "show": _dlq_show, "redrive": _dlq_redrive, "purge": _dlq_purge}
    try:
        return handlers[args.action](args, topics, refs)
    except LookupError as exc:
        print(f"dlq: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Kafka down, a timeout: say so, no traceback
        print(f"dlq: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _dlq_list(args: argparse.Namespace, topics: DeadLetterTopics, refs: list[Ref]) -> int:
    from ops.dlq import letters as dlq

    sources = _dlq_sources(args)
    found = [
        letter
        for letter in topics.read(sources)
        if dlq.matches(letter, args.stage, args.reason_contains)
    ]
    shown = found[-args.limit :] if args.limit else found
    ledger = topics.read_ledger(sources)
    if args.json:
        body = {
            "total": len(found),
            "shown": len(shown),
            "groups": [
                {"stage": g.stage, "reason": g.reason, "refs": [x.ref for x in g.letters]}
                for g in dlq.group(shown)
            ],
            "dead_letters": [dlq.summary(letter, ledger) for letter in shown],
        }
        print(json.dumps(body, indent=2, default=str))
    else:
        print(dlq.render_list(dlq.group(shown), ledger))
        if len(shown) < len(found):
            print(f"({len(found) - len(shown)} older not shown: --limit)")
    return 0


def _dlq_show(args: argparse.Namespace, topics: DeadLetterTopics, refs: list[Ref]) -> int:
    from ops.dlq import letters as dlq

    sources = [refs[0].source] if refs[0].source else list(dlq.SOURCES)
    letter = dlq.resolve(topics.read(sources), refs[0])
    shown = dlq.details(letter, topics.codecs, topics.read_ledger([letter.source]))
    print(json.dumps(shown, indent=2, default=str) if args.json else dlq.render_details(shown))
    return 0


def _dlq_redrive(args: argparse.Namespace, topics: DeadLetterTopics, refs: list[Ref]) -> int:
    from ops.dlq import letters as dlq

    if bool(refs) == args.all:
        print("dlq redrive: give --all or dead-letter refs (not both)", file=sys.stderr)
        return 2
    sources = _dlq_sources(args)
    if refs and not args.topic:
        sources = sorted({r.source for r in refs if r.source} or dlq.SOURCES)
    steps = dlq.plan_redrive(
        topics.read(sources),
        refs=refs,
        stage=args.stage,
        ledger=topics.read_ledger(sources),
        max_redrives=args.max_redrives,
    )
    outcomes = [] if args.dry_run else topics.redrive(steps)
    result = dlq.report(steps, outcomes, args.dry_run)
    print(json.dumps(result, indent=2))
    return 1 if result["refused"] or result["failed"] else 0


def _dlq_purge(args: argparse.Namespace, topics: DeadLetterTopics, refs: list[Ref]) -> int:
    ends = topics.ends(_dlq_sources(args))
    present = {t: sum(end - first for first, end in p.values()) for t, p in ends.items()}
    if not args.yes:
        print(json.dumps({"would_delete": present}, indent=2))
        print("dlq purge deletes these records for good: add --yes", file=sys.stderr)
        return 2
    print(json.dumps({"deleted": topics.purge(ends)}, indent=2))
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from ops.status import cli_status, render, unreachable

    report = asyncio.run(cli_status(settings, args.metrics_url, args.api_key, args.timeout))
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    # A paused or busy stage is a state, not a failure: only what could not be read is.
    missing = unreachable(report)
    for line in missing:
        print(line, file=sys.stderr)
    return 1 if missing else 0


def _dlq_parser(commands: Any) -> None:
    from ops.dlq.letters import DEFAULT_MAX_REDRIVES, SOURCES, STAGE_SOURCE

    dlq = commands.add_parser("dlq", help="dead letters: list, show, redrive, purge")
    actions = dlq.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    topic = argparse.ArgumentParser(add_help=False)
    topic.add_argument(
        "--topic", action="append", choices=SOURCES, help="only the dead letters of this topic"
    )
    stage = argparse.ArgumentParser(add_help=False)
    stage.add_argument("--stage", choices=sorted(STAGE_SOURCE), help="only this stage's")

    listing = actions.add_parser("list", parents=[common, topic, stage], help="grouped by reason")
    listing.add_argument("--reason-contains", metavar="TEXT", help="only reasons with TEXT")
    listing.add_argument("--limit", type=int, default=100, help="the latest N (0: all)")
    listing.add_argument("--json", action="store_true")

    show = actions.add_parser("show", parents=[common], help="one dead letter, payload decoded")
    show.add_argument("refs", nargs=1, metavar="REF", help="OFFSET, PARTITION:OFFSET or SOURCE:P:O")
    show.add_argument("--json", action="store_true")

    redrive = actions.add_parser(
        "redrive", parents=[common, topic, stage], help="send dead letters back to their topic"
    )
    redrive.add_argument("refs", nargs="*", metavar="REF", help="OFFSET, P:OFFSET or SOURCE:P:O")
    redrive.add_argument("--all", action="store_true", help="every dead letter not redriven yet")
    redrive.add_argument(
        "--max-redrives",
        type=int,
        default=DEFAULT_MAX_REDRIVES,
        help="refuse an event redriven this many times already",
    )
    redrive.add_argument("--dry-run", action="store_true", help="say what would happen only")

    purge = actions.add_parser("purge", parents=[common, topic], help="delete them up to now")
    purge.add_argument("--yes", action="store_true", help="really delete")
    dlq.set_defaults(handler=_dlq)


def _status_parser(commands: Any) -> None:
    status = commands.add_parser("status", help="topics, lag, breakers, freshness, stores")
    status.add_argument("--json", action="store_true")
    status.add_argument("--metrics-url", help="the worker's /metrics (default: the API address)")
    status.add_argument(
        "--api-key",
        help="for the worker's /admin/status (embedded Qdrant; default: the first "
        "DOCSTREAM_API_KEYS, else the local stack's .stack/admin-key)",
    )
    status.add_argument("--timeout", type=float, default=5.0, help="seconds per probe")
    status.set_defaults(handler=_status)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="docstream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = root.add_subparsers(dest="command", required=True)

    publish = commands.add_parser("publish", help="publish documents to the documents topic")
    publish.add_argument(
        "paths", nargs="*", help="files, folders, JSONL files, or - for stdin (JSONL)"
    )
    publish.add_argument("--delete", nargs="+", metavar="DOC_ID", help="send DELETE events")
    publish.add_argument(
        "--progress",
        action="store_true",
        default=None,
        help="show progress with the rate (default: when stderr is a terminal)",
    )
    publish.add_argument(
        "--correlation-id", help="one id for every event of this run (default: minted)"
    )
    publish.add_argument("--glob", default="*", help="in folders, only files matching this pattern")
    publish.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    publish.add_argument("--dry-run", action="store_true", help="read and validate, send nothing")
    publish.set_defaults(handler=_publish)

    schemas = commands.add_parser("schemas", help="check or release the Avro schemas")
    schemas.add_argument("action", choices=["check", "release"])
    schemas.set_defaults(handler=_schemas)

    worker = commands.add_parser("worker", help="run the pipeline worker")
    worker.add_argument(
        "--no-api", action="store_true", help="do not serve the API in this process"
    )
    worker.set_defaults(handler=_worker)

    api = commands.add_parser("api", help="run the API alone (needs QDRANT_URL)")
    api.set_defaults(handler=_api)

    _dlq_parser(commands)
    _status_parser(commands)
    admin_client.add_parser(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a setting that cannot be read: say which, no traceback
        print(f"docstream: {exc}", file=sys.stderr)
        return 2
    return int(args.handler(args, settings))


if __name__ == "__main__":
    sys.exit(main())
