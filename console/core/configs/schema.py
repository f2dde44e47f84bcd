"""The agent config JSON Schema: where it lives and a cached validator for it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

# The default agent configs, with the schema in its own sub-folder so the file store (which reads *.json, not
# recursively) never takes it for an agent. Package data: in a checkout ``defaults`` is a symlink to the
# top-level configs/ folder, in an installed wheel a real folder holding copies of its files.
SHIPPED_CONFIGS_DIR = (Path(__file__).parent / "defaults").resolve()
SCHEMA_PATH = SHIPPED_CONFIGS_DIR / "schema" / "agent_config.schema.json"


@functools.cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


@functools.cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


def allowed_fields() -> list[str]:
    return sorted(name for name in load_schema()["properties"] if name != "$schema")
