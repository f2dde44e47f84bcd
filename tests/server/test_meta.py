"""What the console sees and the model does not: `_meta` and progress notifications carry the steps, who the
search ran as and the OBO token's claims — never a token."""

from __future__ import annotations

import json
import re

from mcp_server.server.steps import META_KEY, parse_progress_message
from mcp_server.stack import LocalStack
from tests.fixtures.stack import OwnServer, api_token
from tests.server.helpers import call

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


async def test_meta_and_progress_carry_the_steps_and_no_token(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    user = local_stack.tenant.user_by_login("alice")
    assert user is not None
    token = api_token(local_stack, "alice")
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    url = own_mcp_server.mcp_url  # its OBO cache is cold, and no other test's
    cold = await call(url, token, progress_handler=on_progress)
    warm = await call(url, token)

    # Progress: one notification per step, in order, while the tool ran.
    steps = [parse_progress_message(m) for _, _, m in progress]
    assert [s["step"] for s in steps] == ["validate", "obo_exchange", "search"]
    assert [(d, t) for d, t, _ in progress] == [(1, 3), (2, 3), (3, 3)]
    assert steps[1]["status"] == "ok" and steps[2]["hits"] == len(cold.structured_content["documents"])

    meta = cold.meta[META_KEY]
    assert meta["steps"] == steps
    # The session's first request (initialize) verified the signature; the tool calls reuse that verification.
    assert steps[0]["signature"] == "cached" and warm.meta[META_KEY]["steps"][0]["signature"] == "cached"
    assert all(s["duration_ms"] >= 0 for s in meta["steps"])
    assert meta["ran_as"]["oid"] == user.oid and meta["ran_as"]["name"] == user.name
    assert meta["ran_as"]["groups"] == list(user.groups)
    assert meta["obo_claims"]["aud"] == "https://search.azure.com"
    assert meta["obo_claims"]["oid"] == user.oid and meta["obo_claims"]["tid"] == local_stack.tenant.tenant_id
    assert meta["cache_hit"] is False and warm.meta[META_KEY]["cache_hit"] is True
    assert warm.meta[META_KEY]["steps"][1]["status"] == "cache_hit"
    assert meta["hits"] == len(cold.structured_content["documents"]) and meta["aadsts"] is None

    # The model reads the content: documents only, nothing of _meta; and no token anywhere.
    content = cold.content[0].text
    assert json.loads(content) == cold.structured_content
    assert "obo_claims" not in content and "ran_as" not in content
    for blob in (content, json.dumps(cold.meta), json.dumps(warm.meta), *(m or "" for _, _, m in progress)):
        assert not JWT.search(blob)
        assert token not in blob
