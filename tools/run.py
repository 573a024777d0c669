"""`make run` (`python -m tools.run`): the whole pipeline on one machine.

Starts the local stack (if it is not up), publishes the sample corpus, runs the
worker with the API beside it (its admin routes open with the stack's own key,
tools/admin_key.py), prints a query to paste once the API is ready, and on
Ctrl-C, at any moment, stops what it started.

The worker runs as a child process (`--worker`) and this one only supervises:
a worker in the middle of its start (loading the model, Faust starting its
services) may take its time over a SIGINT or lose it, and a supervisor that
does nothing else can always act on one. Ctrl-C reaches both (the terminal
signals the whole foreground group); the supervisor gives the worker a few
seconds, then SIGTERM, then SIGKILL, and stops the services it started.
Offsets move only after a write, so a worker stopped at any point loses
nothing."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from core.settings import Settings
from ops.composition import run_worker
from tools.admin_key import announcement, stack_admin_key, with_admin_key
from tools.children import stop_child
from tools.run_cluster import run_cluster
from tools.sample import publish_sample
from tools.stack.local import LocalStack

SAMPLE_QUERY = "how does docstream rebuild an index"


def _announce_when_ready(
    settings: Settings, correlation_id: str, stopping: threading.Event
) -> None:
    base = f"http://{settings.api.host}:{settings.api.port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not stopping.is_set():
        try:
            with urllib.request.urlopen(f"{base}/health/ready", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        time.sleep(1)
    else:
        if not stopping.is_set():
            print("[run] the API did not become ready; see the log above", flush=True)
        return
    if stopping.is_set():
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
    print(announcement(stack_admin_key(settings.stack_dir)), flush=True)
    stack = LocalStack(settings)
    started: list[str] = []
    try:
        started = stack.up()  # stops what it started if interrupted half-way
        print(f"[run] vector store: {stack.engine()}", flush=True)
        correlation_id = publish_sample(settings, sample)
        return _supervise(settings, correlation_id)
    except KeyboardInterrupt:
        print("\n[run] interrupted", flush=True)
        return 130
    finally:
        # A second Ctrl-C must not cut the stopping short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if started:
            print(f"[run] stopping {', '.join(started)}", flush=True)
            stack.down(only=started)


def _supervise(settings: Settings, correlation_id: str) -> int:
    """Run the worker until it exits; on Ctrl-C, see that it does, soon."""
    worker = subprocess.Popen([sys.executable, "-m", "tools.run", "--worker"])
    stopping = threading.Event()
    threading.Thread(
        target=_announce_when_ready, args=(settings, correlation_id, stopping), daemon=True
    ).start()
    try:
        return worker.wait()
    except KeyboardInterrupt:
        stopping.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("\n[run] stopping the worker", flush=True)
        stop_child(worker)
        raise


def run_worker_child(settings: Settings) -> int:
    """The worker of `make run`, with the stack's admin key among the API's keys."""
    settings = with_admin_key(settings, stack_admin_key(settings.stack_dir).value)
    try:
        return run_worker(settings, with_api=True)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except KeyboardInterrupt:
        return 130


SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "samples" / "corpus"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run", description=__doc__)
    parser.add_argument(
        "--sample", default=str(SAMPLE_CORPUS), help="folder of documents to publish"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="the production topology: three brokers, three Qdrant nodes, two workers, two APIs",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker_child(Settings.from_env())
    if args.cluster:
        return run_cluster(Settings.from_env(), Path(args.sample), dict(os.environ))
    return run_everything(Settings.from_env(), Path(args.sample))


if __name__ == "__main__":
    sys.exit(main())
