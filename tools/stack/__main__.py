"""`python -m tools.stack up|down|status|start [NAME…] [--secure | --cluster]`:
the local Kafka + Neo4j stack of a source checkout (`make services-up` and
friends call it). `up --secure` starts the secured profile (SASL_SSL Kafka,
Neo4j with TLS and auth, Qdrant with TLS and an API key) and writes the client
settings that reach it to `<stack>/secure.env`; `status`, `down` and `start`
follow the profile that `up` started. `--cluster` addresses the cluster
profile (three Kafka brokers, three Qdrant nodes, Neo4j: tools/stack/cluster.py),
which lives in `<stack>/cluster` beside the others; its client settings go to
`<stack>/cluster/cluster.env`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from core.settings import Settings
from tools.stack.cluster import ClusterPorts
from tools.stack.env_file import how_to_use
from tools.stack.local import SECURE, LocalStack, StackError, recorded_profile


def services(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.cluster and args.secure:
            raise StackError("--secure and --cluster are two profiles: choose one")
        if args.cluster:
            stack = LocalStack(settings, cluster=ClusterPorts.default())
        else:
            stack = LocalStack(settings, secure=wants_secure(args, settings))
        if args.action == "up":
            stack.up()
            print_usage(stack)
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
                    print(f"{s.name:8} {s.state:8} {s.address:24} pid={s.pid or '-'}")
            return 0 if all(s.state in ("ready", "external") for s in states) else 1
    except StackError as exc:
        print(f"[stack] error: {exc}", file=sys.stderr)
        return 1
    return 0


def wants_secure(args: argparse.Namespace, settings: Settings) -> bool:
    """`--secure`, or (for all but `up`, which is told) the profile running."""
    if args.secure or args.action == "up":
        return bool(args.secure)
    return recorded_profile(settings.stack_dir) == SECURE


def print_usage(stack: LocalStack) -> None:
    """Where a profile's client settings are, and how a shell takes them."""
    env_file = stack.env_file
    if env_file is None:
        return
    kept = " (secrets by *_FILE only)" if stack.security is not None else ""
    print(f"[stack] {stack.profile}: the client settings are in {env_file}{kept}")
    print(f"[stack] use them in a shell with: {how_to_use(env_file)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stack", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status", "start"])
    parser.add_argument(
        "names", nargs="*", help="down/start: only these services (kafka, neo4j; kafka-1…)"
    )
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.add_argument(
        "--secure",
        action="store_true",
        help="up: the secured profile (TLS, SASL, auth); the others follow what runs",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="the cluster profile: three Kafka brokers, three Qdrant nodes, Neo4j",
    )
    args = parser.parse_args(argv)
    return services(args, Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
