"""`python -m tools.stack up|down|status|start [NAME…]`: the local Kafka + Neo4j
stack of a source checkout (`make services-up` and friends call it)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from core.settings import Settings
from tools.stack.local import LocalStack, StackError


def services(args: argparse.Namespace, settings: Settings) -> int:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stack", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status", "start"])
    parser.add_argument("names", nargs="*", help="down/start: only these services (kafka, neo4j)")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    args = parser.parse_args(argv)
    return services(args, Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
