"""`docstream rebuild` and `docstream replay`: ask the worker to rebuild an
index (or repair it from an offset or a time) or to replay the raw documents,
follow the job, and interrupt it on Ctrl-C (running it again resumes it).

The jobs run inside the worker (`ops/jobs/rebuild.py`, `ops/jobs/replay.py`), which owns
the stores; these commands talk to the worker's API with an admin key
(ops/admin_key.py says which)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx

from core.settings import Settings
from ops.admin_key import find_api_key

POLL_S = 2.0


def add_parser(commands: Any) -> None:
    rebuild = commands.add_parser(
        "rebuild",
        help="rebuild Qdrant and/or Neo4j from chunks.embedded into a new generation, then "
        "switch; with --from-offset/--from-time, re-apply events from there to the active one",
    )
    rebuild.add_argument("--target", choices=["qdrant", "neo4j", "all"], default="all")
    start = rebuild.add_mutually_exclusive_group()
    start.add_argument(
        "--from-offset",
        default=None,
        help="a repair from this offset of every partition, or from partition:offset pairs "
        "(0:1200,1:1180)",
    )
    start.add_argument(
        "--from-time",
        default=None,
        help="a repair from the first event at or after this ISO 8601 time (UTC if no zone)",
    )
    _common(rebuild)
    rebuild.set_defaults(handler=run, path="/admin/rebuild", label="rebuild")

    replay = commands.add_parser(
        "replay",
        help="re-chunk and re-embed the raw documents into a new generation of both "
        "indexes, then switch (for a changed chunker or model)",
    )
    replay.add_argument("--topic", choices=["documents"], default="documents")
    replay.add_argument("--model", default=None, help="embedding model (default: the live one)")
    replay.add_argument("--max-tokens", type=int, default=None, help="chunk size, in tokens")
    replay.add_argument("--overlap-tokens", type=int, default=None, help="chunk overlap")
    _common(replay)
    replay.set_defaults(handler=run, path="/admin/replay", label="replay")


def _common(command: Any) -> None:
    command.add_argument("--api", default="", help="the worker's API (default: from settings)")
    command.add_argument(
        "--api-key",
        default="",
        help="default: the first DOCSTREAM_API_KEYS, else the local stack's .stack/admin-key",
    )
    command.add_argument("--status", action="store_true", help="show the current job and exit")
    command.add_argument("--interrupt", action="store_true", help="interrupt the running one")


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    """What the command asks the worker for (see api/rebuild.py)."""
    if args.label == "replay":
        wanted = {
            "topic": args.topic,
            "model": args.model,
            "max_tokens": args.max_tokens,
            "overlap_tokens": args.overlap_tokens,
        }
    else:
        wanted = {
            "target": args.target,
            "from_offset": args.from_offset,
            "from_time": args.from_time,
        }
    return {name: value for name, value in wanted.items() if value is not None}


def run(args: argparse.Namespace, settings: Settings) -> int:
    base = args.api or f"http://{settings.api.host}:{settings.api.port}"
    key = find_api_key(args.api_key, settings)
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:
        try:
            if args.status:
                return _show(client.get(args.path))
            if args.interrupt:
                return _show(client.delete(args.path))
            started = client.post(args.path, json=request_body(args))
            if started.status_code != 202:
                return _show(started)
            return _follow(client, args.path, args.label)
        except httpx.TransportError as exc:
            print(
                f"[{args.label}] the worker's API at {base} does not answer: {exc}", file=sys.stderr
            )
            return 1


def _follow(client: httpx.Client, path: str, label: str) -> int:
    # A store that has finished is said once: its line would only repeat with a
    # rate decaying over the time the other store still takes.
    finished: set[str] = set()
    try:
        while True:
            report = client.get(path).json()
            for target in report["targets"]:
                if target["target"] in finished:
                    continue
                print(progress_line(target, label), flush=True)
                if target["phase"] in FINISHED:
                    finished.add(target["target"])
            if not report["running"]:
                phases = {t["phase"] for t in report["targets"]}
                if report.get("configure") and phases == {"done"}:
                    settings = " ".join(f"{k}={v}" for k, v in report["configure"].items())
                    print(f"[{label}] the worker now runs this profile; configure it: {settings}")
                return 0 if phases == {"done"} else 1
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        client.delete(path)
        print(f"[{label}] interrupted; run the same command again to resume", file=sys.stderr)
        return 130


FINISHED = frozenset({"done", "refused", "interrupted", "failed"})


def progress_line(target: dict[str, Any], label: str = "rebuild") -> str:
    eta = "-" if target["eta_s"] is None else f"{target['eta_s']:.0f}s"
    left = "-" if target["offsets_left"] is None else str(target["offsets_left"])
    line = (
        f"[{label}] {target['target']:6} {target['phase']:9} {target['generation']} "
        f"written={target['written']} rate={target['per_s']} {target['unit']}/s "
        f"left={left} eta={eta}"
    )
    if target["previous"]:
        line += f" (replaces {target['previous']})"
    return line + (f" error={target['error']}" if target["error"] else "")


def _show(response: httpx.Response) -> int:
    print(response.text)
    return 0 if response.is_success else 1
