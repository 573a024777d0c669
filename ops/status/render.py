"""`docstream status` as text: one section after another, and what could not be read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def render(report: Mapping[str, Any]) -> str:
    """The report as text, one section after another."""
    lines = [f"docstream status at {report.get('at')}"]
    for name in ("kafka", "pipeline", "qdrant", "neo4j"):
        section = report.get(name, {})
        lines.append(f"\n{name}")
        if "error" in section:
            lines.append(f"  unavailable: {section['error']}")
            continue
        lines += RENDERERS[name](section)
    return "\n".join(lines)


def _kafka_lines(kafka: Mapping[str, Any]) -> list[str]:
    lines = [f"  brokers: {', '.join(kafka['brokers']) or 'none'}"]
    lines.append(f"  security: {kafka.get('security', 'PLAINTEXT')}")
    for name, topic in kafka["topics"].items():
        ends = ",".join(str(e) for e in topic["end_offsets"].values())
        lines.append(
            f"  {name:<48} partitions {topic['partitions']:<3} records {topic['records']:<8} "
            f"end offsets {ends}{_replica_note(topic)}"
        )
    lines += [f"  {name:<48} missing" for name in kafka["missing_topics"]]
    for stage, group in kafka["groups"].items():
        lines.append(f"  lag {stage:<12} {group['group']:<36} {group['lag']}")
        lines += _member_lines(group)
    if "caught_up" in kafka:
        lines.append(_caught_up_line(kafka))
    return lines


def _replica_note(topic: Mapping[str, Any]) -> str:
    """A topic's copies, and its partitions short of them (the broker ids of
    each partition's leader are in the JSON report)."""
    if "replication_factor" not in topic:
        return ""
    note = f" replicas {topic['replication_factor']}"
    if topic["under_replicated"]:
        note += f" under-replicated {','.join(str(p) for p in topic['under_replicated'])}"
    if topic["offline"]:
        note += f" OFFLINE {','.join(str(p) for p in topic['offline'])}"
    return note


def _member_lines(group: Mapping[str, Any]) -> list[str]:
    """The workers of a stage: each member of its group, what it holds."""
    if "members" not in group:
        return []
    lines = [f"    group {group['state'].lower()}, {len(group['members'])} members"]
    for member in group["members"]:
        held = "; ".join(
            f"{topic} {','.join(str(p) for p in ps)}" for topic, ps in member["partitions"].items()
        )
        lines.append(f"    member {member['member']} at {member['host']}: {held or 'nothing'}")
    return lines


def _caught_up_line(kafka: Mapping[str, Any]) -> str:
    if kafka["caught_up"]:
        return "  caught up: both stores hold everything published before this report"
    owed = sum(group["lag"] for group in kafka["groups"].values())
    return f"  caught up: no, {owed} records still to be handled (committed offsets to the ends)"


def _pipeline_lines(metrics: Mapping[str, Any]) -> list[str]:
    lines = [f"  metrics from {metrics['source']}"]
    breakers = ", ".join(f"{k} {v}" for k, v in sorted(metrics["breakers"].items()))
    lines.append(f"  breakers: {breakers or 'none seen'}")
    for sink, reason in sorted(metrics.get("sinks_blocked", {}).items()):
        lines.append(f"  {sink}: blocked: {reason or 'no reason given'} — the operator must fix it")
    lines += _consumer_lines(metrics.get("consumers", {}))
    for sink, f in sorted(metrics["freshness_s"].items()):
        cuts = " ".join(f"{k} {_seconds(v)}" for k, v in f.items() if k != "count")
        lines.append(f"  freshness {sink}: {cuts} (n={f['count']})")
    for stage, outcomes in sorted(metrics["events"].items()):
        counts = ", ".join(f"{k} {int(v)}" for k, v in sorted(outcomes.items()))
        lines.append(f"  events {stage}: {counts}")
    if follow := metrics.get("follow"):
        lines.append(_follow_line(follow))
    if profile := metrics.get("profile"):
        note = "" if profile["configured"] else " (a replay's: not yet the configured one)"
        lines.append(
            f"  profile: {profile['model']} max_tokens={profile['max_tokens']} "
            f"overlap_tokens={profile['overlap_tokens']}{note}"
        )
    if backend := metrics.get("embedder_backend"):
        lines.append(f"  embedder backend: {backend}")
    return lines


def _follow_line(follow: Mapping[str, Any]) -> str:
    delay = follow["delay_s"]
    cuts = " ".join(f"{k} {_seconds(v)}" for k, v in delay.items() if k != "count")
    rate = follow["notifications_per_s"]
    closed = ", ".join(f"{k} {v}" for k, v in follow["closed"].items()) or "none"
    return (
        f"  follow: {follow['followers']} followers, {follow['notifications']} notifications"
        f" ({'?' if rate is None else rate}/s since start), delay to event {cuts}"
        f" (n={delay['count']}), refused or ended: {closed}"
    )


def _consumer_lines(consumers: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line a consumer: its state, why, and what to do (ops/status/consumers.py)."""
    lines = []
    for stage, c in consumers.items():
        since = f" for {c['paused_for_s']:.0f}s" if c.get("paused_for_s") is not None else ""
        line = f"  consumer {stage:<12} {c['state']}{since}: {c['why']}"
        lines.append(line + (f"; {c['action']}" if c["action"] else ""))
    return lines or ["  consumers: none seen"]


def unreachable(report: Mapping[str, Any]) -> list[str]:
    """What the report could not read, one line each, for stderr."""
    return [
        f"unreachable: {name} ({section.get('asked', name)}: {section['error']})"
        for name, section in report.items()
        if isinstance(section, Mapping) and "error" in section
    ]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _index_lines(index: Mapping[str, Any]) -> list[str]:
    sizes = ", ".join(f"{index[k]} {k}" for k in ("chunks", "documents") if k in index)
    lines = [f"  {index['active']}: {sizes} ({index['location']})"]
    if made := index.get("profile"):
        lines.append(
            f"  made with {made.get('model')} ({made.get('dimension')}-d) "
            f"max_tokens={made.get('max_tokens')} overlap_tokens={made.get('overlap_tokens')}"
        )
    if index.get("building"):
        building = index.get("building_size", {})
        lines.append(f"  rebuilding into {index['building']}: {building.get('chunks', 0)} chunks")
    if cluster := index.get("cluster"):
        lines += _cluster_lines(cluster)
    return lines


def _cluster_lines(cluster: Mapping[str, Any]) -> list[str]:
    """A Qdrant cluster as one node sees it: each peer, each shard replica."""
    if not cluster["enabled"]:
        return ["  cluster: off (a single node)"]
    lines = [f"  cluster: {len(cluster['peers'])} peers (asked peer {cluster['asked_peer']})"]
    for peer in cluster["peers"]:
        failed = f", {peer['failed_sends']} failed sends" if peer["failed_sends"] else ""
        lines.append(f"    peer {peer['peer']} {peer['uri']}{failed}")
    for replica in cluster["replicas"]:
        points = f" {replica['points']} points" if "points" in replica else ""
        lines.append(
            f"    {cluster['collection']} shard {replica['shard']} on peer {replica['peer']}: "
            f"{replica['state']}{points}"
        )
    return lines


RENDERERS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "kafka": _kafka_lines,
    "pipeline": _pipeline_lines,
    "qdrant": _index_lines,
    "neo4j": _index_lines,
}
