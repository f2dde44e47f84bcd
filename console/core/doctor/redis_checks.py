"""Doctor check of Redis, when the console is configured to use it: reachable, and its agent configs valid."""

from __future__ import annotations

from console.core.configs.redis_store import connect, masked_url, read_configs, redis_errors
from console.core.configs.validation import parse_json, schema_issues
from console.core.doctor.model import Check, CheckFailed, Doctor


def redis_store(doctor: Doctor) -> str:
    url = doctor.settings.redis_url
    client = connect(url)
    try:
        client.ping()
        raw = read_configs(client)
    except redis_errors() as exc:
        raise CheckFailed(
            f"Redis at {masked_url(url)} is unreachable ({type(exc).__name__})",
            "Start Redis (Azure portal > the Azure Cache for Redis > Overview: Running), set REDIS_URL to where it "
            "runs, or USE_REDIS=false to use configs/*.json.",
        ) from None
    finally:
        client.close()
    bad = []
    for key, config in raw.items():
        document, issues = parse_json(config.text, key=key, source=config.source)
        if not issues:
            issues = schema_issues(document, key=key, source=config.source)
        if issues:
            bad.append(key)
    if bad:
        raise CheckFailed(
            f"Redis at {masked_url(url)} holds invalid configs: {', '.join(bad)}",
            "Fix them in files and push again: `obo-console configs validate` then `obo-console configs push`.",
        )
    return f"Redis at {masked_url(url)}: {len(raw)} valid config(s)"


CHECKS = [
    Check("redis", "Redis reachable with valid configs", redis_store, applies=lambda d: d.settings.use_redis)
]
