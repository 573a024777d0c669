"""`docstream`: the command line of producers and operators.

docstream services up|down|status      the local Kafka + Neo4j stack
docstream publish PATH… [-]            send documents (files, folders, JSONL, stdin)
docstream worker [--no-api]            the pipeline (and, by default, the API beside it)
docstream api                          the API alone (needs a Qdrant server: QDRANT_URL)
docstream run                          everything, with the sample corpus (`make run`)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import asdict
from pathlib import Path

from core.correlation import mint_correlation_id, mint_traceparent
from core.settings import Settings

SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "samples" / "corpus"


def _services(args: argparse.Namespace, settings: Settings) -> int:
    from ops.stack.local import LocalStack, StackError

    try:
        stack = LocalStack(settings)
        if args.action == "up":
            stack.up()
        elif args.action == "down":
            stopped = stack.down(only=args.names or None)
            print(f"[stack] stopped: {', '.join(stopped) or 'nothing was running'}")
        elif args.action == "start":
            for name in args.names:
                stack.start(name)
        else:
            states = stack.status()
            if args.json:
                print(json.dumps([asdict(s) for s in states], indent=2))
            else:
                for s in states:
                    print(f"{s.name:6} {s.state:8} {s.address:24} pid={s.pid or '-'}")
            return 0 if all(s.state in ("ready", "external") for s in states) else 1
    except StackError as exc:
        print(f"[stack] error: {exc}", file=sys.stderr)
        return 1
    return 0


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from core.topics import ensure_topics
    from ops.publish import DocumentPublisher, Progress, PublishReport
    from ops.sources import Rejected, Skipped, delete_events, read_path
    from schemas.codec import Codecs

    if not args.paths and not args.delete:
        print("nothing to publish: give PATHs, - for stdin, or --delete DOC_ID…", file=sys.stderr)
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


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from ops.serve import run_worker

    return run_worker(settings, with_api=not args.no_api)


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from ops.serve import run_api

    return run_api(settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from ops.run import run_everything

    return run_everything(settings, Path(args.sample))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="docstream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = root.add_subparsers(dest="command", required=True)

    services = commands.add_parser("services", help="the local Kafka + Neo4j stack")
    services.add_argument("action", choices=["up", "down", "status", "start"])
    services.add_argument("names", nargs="*", help="down/start: only these services (kafka, neo4j)")
    services.add_argument("--json", action="store_true", help="status as JSON")
    services.set_defaults(handler=_services)

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

    run = commands.add_parser("run", help="stack + worker + API + sample corpus")
    run.add_argument("--sample", default=str(SAMPLE_CORPUS), help="folder of documents to publish")
    run.set_defaults(handler=_run)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.handler(args, Settings.from_env()))


if __name__ == "__main__":
    sys.exit(main())
