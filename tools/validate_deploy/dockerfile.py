"""The Dockerfile, parsed by BuildKit's own parser (the `dockerfile` wheel):
a build stage and a runtime stage, the VARIANT build argument, a non-root user,
a health check, the hub switched off, and COPY sources that exist."""

from __future__ import annotations

from pathlib import Path

import dockerfile

from tools.validate_deploy.runner import Problems

ROOT_USERS = ("root", "0", "0:0", "root:root")


def check_dockerfile(path: Path) -> Problems:
    try:
        commands = dockerfile.parse_file(str(path))
    except (OSError, dockerfile.GoParseError) as exc:
        return [f"{path.name}: does not parse: {exc}"]
    stages = [i for i, c in enumerate(commands) if c.cmd == "FROM"]
    if len(stages) < 2:
        return [f"{path.name}: not multi-stage ({len(stages)} FROM)"]
    problems = []
    global_args = [c.value[0].split("=")[0] for c in commands[: stages[0]] if c.cmd == "ARG"]
    if "VARIANT" not in global_args:
        problems.append(f"{path.name}: no ARG VARIANT before the first FROM")
    if not any(c.cmd == "RUN" and "VARIANT" in c.original for c in commands):
        problems.append(f"{path.name}: no RUN step uses VARIANT")
    final = commands[stages[-1] :]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    if not users or users[-1] in ROOT_USERS:
        problems.append(f"{path.name}: the final stage does not switch to a non-root USER")
    health = [c for c in final if c.cmd == "HEALTHCHECK"]
    if not health or health[-1].value[0].upper() == "NONE":
        problems.append(f"{path.name}: the final stage has no HEALTHCHECK")
    env = " ".join(" ".join(c.value) for c in final if c.cmd == "ENV")
    if "HF_HUB_OFFLINE 1" not in env and "HF_HUB_OFFLINE=1" not in env:
        problems.append(f"{path.name}: the final stage does not set HF_HUB_OFFLINE=1")
    for command in commands:
        if command.cmd in ("COPY", "ADD") and not any(
            f.startswith("--from") for f in command.flags
        ):
            for source in command.value[:-1]:
                if not (path.parent / source).exists():
                    problems.append(f"{path.name}:{command.start_line}: {source} does not exist")
    return problems
