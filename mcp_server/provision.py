"""The demo index and documents, and provisioning them with the real azure-search-documents SDK.

Used in local mode (against the local search service) and in Azure mode (against Azure AI Search). Documents name
their readers symbolically — demo users by login (``alice``), groups as ``group:<name>`` — and a principal map turns
those into object ids: the demo tenant's ids in local mode, ``--assign`` mappings in Azure mode.

The index: key ``id``, ``name``, access fields ``oid`` (permissionFilter userIds) and ``group``
(permissionFilter groupIds), ``permissionFilterOption`` enabled (docs/contracts.md, the demo tenant). The
first five documents are the "sample set": alice reads exactly three of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError
from azure.search.documents import SearchClient
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import (
    PermissionFilter,
    SearchableField,
    SearchField,
    SearchFieldDataType,
    SearchIndex,
    SearchIndexPermissionFilterOption,
    SimpleField,
)
from pydantic import SecretStr

from mcp_server.search_credential import SearchAuthentication, api_key_auth, refused_redirect

PUBLIC = "all"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class DemoDocument:
    id: str
    name: str
    description: str
    content: str
    category: str
    users: tuple[str, ...] = ()  # demo user logins, or PUBLIC
    groups: tuple[str, ...] = ()  # demo group names

    @property
    def public(self) -> bool:
        return PUBLIC in self.users or PUBLIC in self.groups


def _doc(
    id_: str,
    name: str,
    description: str,
    content: str,
    category: str,
    *,
    users: Iterable[str] = (),
    groups: Iterable[str] = (),
) -> DemoDocument:
    return DemoDocument(id_, name, description, content, category, tuple(users), tuple(groups))


DEMO_DOCUMENTS: tuple[DemoDocument, ...] = (
    # The sample set (the first five): alice reads doc-01..03, bob doc-01 and doc-05, carol 01, 02, 04.
    _doc(
        "doc-01",
        "Company handbook",
        "How we work: values, holidays, expenses and security basics.",
        "Welcome to Contoso. This handbook covers our values, working hours, holidays, travel and the security "
        "basics every employee follows.",
        "general",
        users=[PUBLIC],
    ),
    _doc(
        "doc-02",
        "Q3 budget forecast",
        "Finance's forecast of revenue and spending for the third quarter.",
        "The Q3 forecast expects revenue growth of eight percent; travel spending is capped and hiring is "
        "limited to critical engineering roles.",
        "finance",
        groups=["Finance"],
    ),
    _doc(
        "doc-03",
        "Alice's performance review",
        "Annual review notes for Alice, shared with Alice only.",
        "Alice led the search migration, mentored two engineers and improved incident response times.",
        "personal",
        users=["alice"],
    ),
    _doc(
        "doc-04",
        "Salary bands 2026",
        "HR's salary bands per level and location.",
        "Salary bands are reviewed yearly. Bands differ per level and location; offers outside a band need "
        "HR approval.",
        "hr",
        groups=["HR"],
    ),
    _doc(
        "doc-05",
        "Bob's onboarding plan",
        "First-month plan for Bob: accounts, mentors and milestones.",
        "Week one: accounts and laptop. Week two: pair with a mentor on the search service. Week four: first "
        "on-call shadow shift.",
        "personal",
        users=["bob"],
    ),
    # More documents, so every user also has a distinct larger view.
    _doc(
        "doc-06",
        "Architecture overview",
        "How the services, the identity platform and search fit together.",
        "Requests enter through the gateway; the MCP server exchanges user tokens on behalf of the user and "
        "queries the search index with permission filters.",
        "engineering",
        groups=["Engineering"],
    ),
    _doc(
        "doc-07",
        "Incident postmortem: search outage",
        "What happened when the search cluster ran out of disk.",
        "The search cluster ran out of disk after a reindex. Alerts fired late; we added disk alerts and a "
        "runbook for reindexing.",
        "engineering",
        groups=["Engineering"],
    ),
    _doc(
        "doc-08",
        "Office holiday calendar",
        "Public holidays and office closures for the year.",
        "Offices close on public holidays and between the year-end holidays. Plan travel around closures.",
        "general",
        users=[PUBLIC],
    ),
    _doc(
        "doc-09",
        "Travel expense policy",
        "What employees may expense when travelling, and how to claim it.",
        "Book economy travel for trips under six hours. Claim expenses within thirty days with receipts.",
        "general",
        groups=["All Staff"],
    ),
    _doc(
        "doc-10",
        "Carol's recruiting pipeline",
        "Candidates Carol is interviewing this quarter.",
        "Carol tracks twelve candidates; three are in final interviews for finance analyst roles.",
        "personal",
        users=["carol"],
    ),
    _doc(
        "doc-11",
        "Finance audit checklist",
        "Evidence the auditors ask for, owned by Finance with Bob's help.",
        "Auditors ask for invoices, approvals and bank statements. Bob prepares the engineering cost evidence.",
        "finance",
        users=["bob"],
        groups=["Finance"],
    ),
    _doc(
        "doc-12",
        "Security awareness training",
        "The yearly training on phishing, passwords and reporting.",
        "Report phishing with the report button. Use a password manager and never share one-time codes.",
        "general",
        users=[PUBLIC],
    ),
    _doc(
        "doc-13",
        "Board meeting minutes",
        "Minutes of the board meeting; no one in the demo tenant may read them.",
        "The board discussed the acquisition shortlist and approved the annual budget.",
        "board",
    ),
    _doc(
        "doc-14",
        "Joint project charter: search quality",
        "Alice and Carol's charter for better search results.",
        "Goal: better ranking for finance questions. Alice owns relevance tuning, Carol owns evaluation data.",
        "project",
        users=["alice", "carol"],
    ),
    _doc(
        "doc-15",
        "Engineering hiring plan",
        "Roles Engineering will hire next year, shared with HR.",
        "Engineering plans four hires: two platform engineers, one search engineer and one security engineer.",
        "engineering",
        groups=["Engineering", "HR"],
    ),
    # Granted by two of erin's 241 groups: her API token carries the overage claims instead of `groups`, so the
    # MCP server learns these memberships from Microsoft Graph (one of them lies beyond the first 200).
    _doc(
        "doc-16",
        "Project 007 status report",
        "Weekly status of project team 007.",
        "Project 007 finished the data migration; the next milestone is the search relevance review.",
        "project",
        groups=["Project 007"],
    ),
    _doc(
        "doc-17",
        "Project 233 risk register",
        "Open risks tracked by project team 233.",
        "Top risk: the vendor contract renewal. Mitigation: a second supplier is being evaluated.",
        "project",
        groups=["Project 233"],
    ),
)
SAMPLE_SET: tuple[str, ...] = ("doc-01", "doc-02", "doc-03", "doc-04", "doc-05")


def group_key(name: str) -> str:
    return f"group:{name}"


def principals_from_tenant(tenant: Any) -> dict[str, str]:
    """The demo principal map from a tenant (``mcp_server.localcloud.tenant.Tenant``): login/group name -> id."""
    out = {user.login: user.oid for user in tenant.users}
    out.update({group_key(group.name): group.id for group in tenant.groups})
    return out


def referenced_principals() -> list[str]:
    """Every symbolic principal the demo documents name (what ``--assign`` can map)."""
    names: set[str] = set()
    for doc in DEMO_DOCUMENTS:
        names.update(u for u in doc.users if u != PUBLIC)
        names.update(group_key(g) for g in doc.groups if g != PUBLIC)
    return sorted(names)


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``alice=<object id>`` / ``group:Finance=<object id>`` pairs, checked against the demo principals."""
    known = {p.lower(): p for p in referenced_principals()}
    out: dict[str, str] = {}
    for item in items:
        name, sep, object_id = item.partition("=")
        name, object_id = name.strip(), object_id.strip()
        if not sep or not name or not object_id:
            raise ValueError(
                f"--assign {item!r}: expected NAME=OBJECT_ID, e.g. alice=<guid> or group:Finance=<guid>."
            )
        canonical = known.get(name.lower())
        if canonical is None:
            raise ValueError(
                f"--assign {item!r}: unknown demo principal {name!r}; known: {', '.join(sorted(known.values()))}."
            )
        if not GUID.match(object_id):
            raise ValueError(f"--assign {item!r}: {object_id!r} is not an Entra object id (a GUID).")
        out[canonical] = object_id.lower()
    return out


@dataclass
class ResolvedDocuments:
    documents: list[dict[str, Any]]
    unmapped: list[str] = field(default_factory=list)


def resolve_documents(principals: Mapping[str, str]) -> ResolvedDocuments:
    """The documents to upload, with symbolic readers replaced by object ids. Unmapped readers are left out (so a
    document only loses readers, never gains any) and reported."""
    unmapped: set[str] = set()
    docs: list[dict[str, Any]] = []

    def ids(names: Iterable[str], key: Callable[[str], str]) -> list[str]:
        out: list[str] = []
        for name in names:
            if name == PUBLIC:
                out.append(PUBLIC)
            elif key(name) in principals:
                out.append(principals[key(name)])
            else:
                unmapped.add(key(name))
        return out

    for doc in DEMO_DOCUMENTS:
        docs.append(
            {
                "id": doc.id,
                "name": doc.name,
                "description": doc.description,
                "content": doc.content,
                "category": doc.category,
                "oid": ids(doc.users, lambda n: n),
                "group": ids(doc.groups, group_key),
            }
        )
    return ResolvedDocuments(docs, sorted(unmapped))


def index_definition(name: str) -> Any:
    """The SDK model of the demo index (permission fields ``oid`` and ``group``)."""

    strings = SearchFieldDataType.Collection(SearchFieldDataType.STRING)
    return SearchIndex(
        name=name,
        fields=[
            SimpleField(name="id", type=SearchFieldDataType.STRING, key=True, filterable=True, sortable=True),
            SearchableField(name="name", sortable=True),
            SearchableField(name="description"),
            SearchableField(name="content"),
            SimpleField(name="category", type=SearchFieldDataType.STRING, filterable=True, facetable=True),
            SearchField(
                name="oid",
                type=strings,
                filterable=True,
                retrievable=True,
                permission_filter=PermissionFilter.USER_IDS,
            ),
            SearchField(
                name="group",
                type=strings,
                filterable=True,
                retrievable=True,
                permission_filter=PermissionFilter.GROUP_IDS,
            ),
        ],
        permission_filter_option=SearchIndexPermissionFilterOption.ENABLED,
    )


@dataclass
class ProvisionReport:
    endpoint: str
    index: str
    documents: int
    created: int
    updated: int
    unmapped: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "index": self.index,
            "documents": self.documents,
            "created": self.created,
            "updated": self.updated,
            "unmapped_principals": self.unmapped,
        }


class ProvisionError(RuntimeError):
    """Provisioning failed; the message says what the service answered."""


def provision(
    endpoint: str,
    credential: SecretStr | SearchAuthentication,
    index_name: str,
    principals: Mapping[str, str],
) -> ProvisionReport:
    """Create or update the demo index and upload every demo document (idempotent: re-running replaces them).

    ``credential``: the admin api-key, or keyless authentication (an identity with Search Service Contributor and
    Search Index Data Contributor on the service)."""

    auth = api_key_auth(credential) if isinstance(credential, SecretStr) else credential
    resolved = resolve_documents(principals)
    try:
        with SearchIndexClient(endpoint, **auth.client_kwargs()) as index_client:
            index_client.create_or_update_index(index_definition(index_name))
        with SearchClient(endpoint, index_name, **auth.client_kwargs()) as client:
            results = client.upload_documents(resolved.documents)
    except HttpResponseError as exc:
        redirect = refused_redirect(exc.status_code)
        if redirect is not None:
            raise ProvisionError(f"The search service at {endpoint} answered {redirect}") from None
        message = exc.error.message if exc.error is not None and exc.error.message else str(exc.message)
        raise ProvisionError(
            f"The search service at {endpoint} refused the request ({exc.status_code}): {message}"
        ) from None
    except AzureError as exc:
        raise ProvisionError(f"Could not reach the search service at {endpoint}: {exc.message}") from None
    failed = [r for r in results if not r.succeeded]
    if failed:
        detail = "; ".join(f"{r.key}: {r.error_message}" for r in failed)
        raise ProvisionError(f"{len(failed)} document(s) were not uploaded: {detail}")
    return ProvisionReport(
        endpoint=endpoint,
        index=index_name,
        documents=len(results),
        created=sum(1 for r in results if r.status_code == 201),
        updated=sum(1 for r in results if r.status_code == 200),
        unmapped=resolved.unmapped,
    )
