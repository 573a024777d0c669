"""`docstream rebuild`: ask the worker to rebuild an index, follow it, and
interrupt it on Ctrl-C (running it again resumes the same generation).

The rebuild runs inside the worker (`ops/rebuild.py`), which owns the stores;
this command talks to the worker's API with an API key."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx

from core.settings import Settings

POLL_S = 2.0


def add_parser(commands: Any) -> None:
    rebuild = commands.add_parser(
        "rebuild", help="rebuild Qdrant and/or Neo4j from chunks.embedded, then switch"
    )
    rebuild.add_argument("--target", choices=["qdrant", "neo4j", "all"], default="all")
    rebuild.add_argument("--api", default="", help="the worker's API (default: from settings)")
    rebuild.add_argument("--api-key", default="", help="default: the first DOCSTREAM_API_KEYS")
    rebuild.add_argument("--status", action="store_true", help="show the current rebuild and exit")
    rebuild.add_argument("--interrupt", action="store_true", help="interrupt the running one")
    rebuild.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    base = args.api or f"http://{settings.api.host}:{settings.api.port}"
    key = args.api_key or next(iter(sorted(settings.api.api_keys)), "")
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        try:
            if args.status:
                return _show(client.get("/admin/rebuild"))
            if args.interrupt:
                return _show(client.delete("/admin/rebuild"))
            started = client.post("/admin/rebuild", json={"target": args.target})
            if started.status_code != 202:
                return _show(started)
            return _follow(client)
        except httpx.TransportError as exc:
            print(f"[rebuild] the worker's API at {base} does not answer: {exc}", file=sys.stderr)
            return 1


def _follow(client: httpx.Client) -> int:
    try:
        while True:
            report = client.get("/admin/rebuild").json()
            for target in report["targets"]:
                print(progress_line(target), flush=True)
            if not report["running"]:
                phases = {t["phase"] for t in report["targets"]}
                return 0 if phases == {"done"} else 1
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        client.delete("/admin/rebuild")
        print("[rebuild] interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def progress_line(target: dict[str, Any]) -> str:
    eta = "-" if target["eta_s"] is None else f"{target['eta_s']:.0f}s"
    left = "-" if target["offsets_left"] is None else str(target["offsets_left"])
    line = (
        f"[rebuild] {target['target']:6} {target['phase']:9} {target['generation']} "
        f"written={target['written']} rate={target['chunks_per_s']}/s left={left} eta={eta}"
    )
    if target["previous"]:
        line += f" (replaces {target['previous']})"
    return line + (f" error={target['error']}" if target["error"] else "")


def _show(response: httpx.Response) -> int:
    print(response.text)
    return 0 if response.is_success else 1
