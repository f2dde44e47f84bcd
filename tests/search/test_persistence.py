"""Everything survives a restart, and a crash in the middle of an upload loses nothing already committed and
leaves no half-applied batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from azure.core.credentials import AzureKeyCredential
from azure.search.documents import SearchClient

from mcp_server.localcloud.search.auth import EntraTokenValidator
from mcp_server.localcloud.search.request import SearchParams
from mcp_server.localcloud.search.service import SearchService
from mcp_server.localcloud.search.store import SearchStore
from tests.search.helpers import ISSUER, TENANT, Signer

USER = "0c000000-0000-0000-0000-000000000001"
GROUP = "0d000000-0000-0000-0000-000000000001"
INDEX = {
    "name": "keep",
    "fields": [
        {"name": "id", "type": "Edm.String", "key": True},
        {"name": "text", "type": "Edm.String"},
        {"name": "oid", "type": "Collection(Edm.String)", "permissionFilter": "userIds"},
        {"name": "group", "type": "Collection(Edm.String)", "permissionFilter": "groupIds"},
    ],
    "permissionFilterOption": "enabled",
}


def test_restart_keeps_indexes_documents_and_permissions(tmp_path: Path) -> None:
    signer = Signer()
    validator = EntraTokenValidator(signer.jwks, issuers={ISSUER})
    directory = {USER: [GROUP]}

    def service() -> SearchService:
        return SearchService(
            tmp_path, "key", validator, lambda t, o: directory.get(o, []) if t == TENANT else None
        )

    docs = [
        {"id": "pub", "text": "lighthouse keeper", "oid": ["all"], "group": []},
        {"id": "mine", "text": "lighthouse logbook", "oid": [USER], "group": []},
        {"id": "team", "text": "lighthouse rota", "oid": [], "group": [GROUP]},
        {
            "id": "other",
            "text": "lighthouse secrets",
            "oid": ["0c000000-0000-0000-0000-000000000999"],
            "group": [],
        },
    ]
    with service() as first:
        store = first.store
        assert store is not None
        store.create_index(INDEX)
        store.index_documents("keep", docs)
        before = [
            (r["id"], r["@search.score"])
            for r in store.search("keep", SearchParams(search="lighthouse"), None).rows
        ]
        endpoint = first.endpoint
    with service() as second:
        client = SearchClient(second.endpoint, "keep", AzureKeyCredential("key"))
        token = signer.token(USER)
        assert {d["id"] for d in client.search("lighthouse", query_source_authorization=token)} == {
            "pub",
            "mine",
            "team",
        }
        assert (
            [(r["id"], r["@search.score"]) for r in client.search("lighthouse")]
            == before
            == [("pub", before[0][1])]
        )
        assert client.get_document_count() == 4
        assert second.endpoint.startswith("http://127.0.0.1:") and endpoint.startswith("http://127.0.0.1:")


_CRASHER = textwrap.dedent(
    """
    import sqlite3
    import sys
    import threading
    from pathlib import Path
    from mcp_server.localcloud.search.store import SearchStore

    # Every connection the store opens reports its statements. Once the second batch has written 1,000 rows
    # (inside its one transaction), say so and hold still until killed.
    uploading = threading.Event()
    rows = 0
    connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(mid_batch)
        return conn

    def mid_batch(statement):
        global rows
        if uploading.is_set() and statement.lstrip().upper().startswith("INSERT"):
            rows += 1
            if rows == 1000:
                print("mid-batch", flush=True)
                threading.Event().wait()

    sqlite3.connect = traced
    store = SearchStore(Path(sys.argv[1]))
    store.create_index({"name": "crash", "fields": [{"name": "id", "type": "Edm.String", "key": True},
                                                     {"name": "text", "type": "Edm.String"}]})
    store.index_documents("crash", [{"id": f"a{i}", "text": "first batch"} for i in range(500)])
    print("committed", flush=True)
    uploading.set()
    store.index_documents("crash", [{"id": f"b{i}", "text": "second batch " * 10} for i in range(5000)])
    print("done", flush=True)
    """
)


def test_crash_mid_upload_keeps_committed_batches_and_drops_the_partial_one(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "committed"
        # The second batch is half written, in its transaction, and waits there: kill it with no chance to clean up.
        assert proc.stdout.readline().strip() == "mid-batch"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = SearchStore(tmp_path)
    try:
        assert store.count("crash") == 500
        ids = {r["id"] for r in store.search("crash", SearchParams(search="batch", top=1000), None).rows}
        assert ids == {f"a{i}" for i in range(500)}
        # The store still takes writes after recovery.
        store.index_documents("crash", [{"id": "after", "text": "recovered"}])
        assert store.count("crash") == 501
    finally:
        store.close()
