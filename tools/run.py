"""`make run` (`python -m tools.run`): the whole pipeline on one machine.

Starts the local stack (if it is not up), publishes the sample corpus, runs the
worker with the API beside it (its admin routes open with the stack's own key,
tools/admin_key.py), prints a query to paste once the API is ready,
and on Ctrl-C stops what it started."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from core.correlation import mint_correlation_id, mint_traceparent
from core.kafka.admin import ensure_topics
from core.settings import Settings
from ops.composition import run_worker
from ops.publishing.publisher import DocumentPublisher
from ops.publishing.sources import read_path
from schemas.codec import Codecs
from tools.admin_key import announcement, stack_admin_key, with_admin_key
from tools.stack.local import LocalStack

SAMPLE_QUERY = "how does docstream rebuild an index"


def _announce_when_ready(settings: Settings, correlation_id: str) -> None:
    base = f"http://{settings.api.host}:{settings.api.port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health/ready", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        time.sleep(1)
    else:
        print("[run] the API did not become ready; see the log above", flush=True)
        return
    query = urllib.parse.urlencode({"q": SAMPLE_QUERY, "k": 3})
    print(
        "\n[run] docstream is up. The sample corpus was published with correlation id "
        f"{correlation_id}.\n[run] {_embedder_line(base)}\n"
        "[run] Try:\n\n    curl -N -H 'Accept: text/event-stream' "
        f"'{base}/query?{query}'\n\n[run] or open the search page, {base}/ (its follow "
        "switch shows new matches live).\n[run] Ctrl-C stops the worker, the API and the stack.\n",
        flush=True,
    )


def _embedder_line(base: str) -> str:
    """Which model and inference backend the worker chose (GET /health)."""
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            embedder = json.load(response).get("embedder", {})
    except (OSError, ValueError):
        return "the embedder's backend: see the worker's `embedder loaded` log line"
    return (
        f"embedder: {embedder.get('model')} on {embedder.get('backend')} "
        "(DOCSTREAM_EMBED_BACKEND chooses; auto runs the fastest that passed its check)"
    )


def run_everything(settings: Settings, sample: Path) -> int:
    # The admin routes open with the stack's own key, so the CLI works with no flags.
    key = stack_admin_key(settings.stack_dir)
    print(announcement(key), flush=True)
    settings = with_admin_key(settings, key.value)
    stack = LocalStack(settings)
    started = stack.up()
    print(f"[run] vector store: {stack.engine()}", flush=True)
    try:
        ensure_topics(settings.kafka)
        correlation_id = mint_correlation_id()
        codec = Codecs.create(settings.schema_registry_url).documents
        publisher = DocumentPublisher(settings.kafka, codec, correlation_id, mint_traceparent())
        report = publisher.publish(read_path(sample))
        print(f"[run] sample corpus: {report.summary()}", flush=True)
        threading.Thread(
            target=_announce_when_ready, args=(settings, correlation_id), daemon=True
        ).start()
        try:
            return run_worker(settings, with_api=True)
        except SystemExit as exit_:
            return int(exit_.code or 0)
    finally:
        if started:
            print(f"[run] stopping {', '.join(started)}", flush=True)
            stack.down(only=started)


SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "samples" / "corpus"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run", description=__doc__)
    parser.add_argument(
        "--sample", default=str(SAMPLE_CORPUS), help="folder of documents to publish"
    )
    args = parser.parse_args(argv)
    return run_everything(Settings.from_env(), Path(args.sample))


if __name__ == "__main__":
    sys.exit(main())
