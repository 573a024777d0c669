"""`python -m tools.validate_deploy [--root DIR]`: exit 0 when every check passes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tools.validate_deploy.runner import all_checks, run_checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.validate_deploy", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    outcomes = run_checks(all_checks(args.root.resolve()))
    failed = 0
    for outcome in outcomes:
        print(f"  {outcome.status:<5} {outcome.name:<52} {outcome.seconds:6.2f} s")
        if outcome.skipped:
            print(f"        skipped: {outcome.skipped}")
        for problem in outcome.problems:
            print(f"        - {problem}")
        failed += bool(outcome.problems)
    took = time.perf_counter() - started
    print(f"validate-deploy: {len(outcomes)} checks, {failed} failed, {took:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
