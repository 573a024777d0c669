"""`python -m tools.validate_deploy [--root DIR] [--strict]`: exit 0 when every
check passes. A check whose tool is missing is skipped; with --strict (or
VALIDATE_DEPLOY_STRICT=1 in the environment, as CI sets it) a skip fails."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from tools.validate_deploy.runner import all_checks, run_checks

STRICT_VARIABLE = "VALIDATE_DEPLOY_STRICT"


def strict_from(env: Mapping[str, str]) -> bool:
    value = env.get(STRICT_VARIABLE, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    # A typo must not quietly turn CI's guard off.
    raise SystemExit(f"{STRICT_VARIABLE}={value!r}: use 1 or 0")


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.validate_deploy", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"a skipped check fails the run (default from {STRICT_VARIABLE})",
    )
    args = parser.parse_args(argv)
    strict = args.strict or strict_from(os.environ if env is None else env)
    started = time.perf_counter()
    outcomes = run_checks(all_checks(args.root.resolve()))
    failed = 0
    for outcome in outcomes:
        fails = outcome.fails(strict)
        status = "FAIL" if fails else outcome.status
        print(f"  {status:<5} {outcome.name:<52} {outcome.seconds:6.2f} s")
        if outcome.skipped:
            print(f"        skipped{' (strict: a failure)' if strict else ''}: {outcome.skipped}")
        for problem in outcome.problems:
            print(f"        - {problem}")
        failed += fails
    took = time.perf_counter() - started
    mode = ", strict" if strict else ""
    print(f"validate-deploy: {len(outcomes)} checks, {failed} failed{mode}, {took:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
