"""HTML of the device-login page (the ``verification_uri``): a form a person completes in a browser.

Everything echoed back is HTML-escaped; nothing here loads scripts or remote resources.
"""

from __future__ import annotations

from html import escape

from mcp_server.localcloud.tenant import Tenant

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#f3f2f1;margin:0}
main{max-width:440px;margin:8vh auto;background:#fff;padding:2.2rem 2.5rem;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:1.4rem;font-weight:600;margin:0 0 1rem} label{display:block;margin:1rem 0 .3rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #8a8886}
.code{letter-spacing:.2em;text-transform:uppercase;font-family:ui-monospace,monospace}
.buttons{display:flex;gap:.8rem;margin-top:1.5rem} button{flex:1;padding:.6rem;font-size:1rem;border:0;cursor:pointer}
button[value=approve]{background:#0067b8;color:#fff} button[value=decline]{background:#e1dfdd}
.error{background:#fde7e9;border-left:4px solid #a80000;padding:.6rem .8rem;margin-bottom:1rem}
.ok{background:#dff6dd;border-left:4px solid #107c10;padding:.6rem .8rem}
.hint{color:#605e5c;font-size:.9rem} code{background:#f3f2f1;padding:0 .2em}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def _demo_user_parts(tenant: Tenant, error: str | None) -> tuple[str, str, str]:
    """What both sign-in forms show: the demo users' logins, their datalist options, and the error banner."""
    users = ", ".join(f"<code>{escape(u.login)}</code>" for u in tenant.users)
    options = "".join(f"<option value='{escape(u.username)}'>{escape(u.name)}</option>" for u in tenant.users)
    err = f"<div class=error role=alert>{escape(error)}</div>" if error else ""
    return users, options, err


def sign_in_form(
    tenant: Tenant, action: str, *, user_code: str = "", login: str = "", error: str | None = None
) -> str:
    users, options, err = _demo_user_parts(tenant, error)
    return _page(
        "Sign in - local identity platform",
        f"""
<h1>Sign in to {escape(tenant.display_name)}</h1>{err}
<p class=hint>Local identity platform (Entra ID emulator). Enter the code your app shows and pick a demo user.</p>
<form method=post action="{escape(action)}">
<label for=user_code>Code</label>
<input id=user_code name=user_code class=code value="{escape(user_code)}" autocomplete=off required autofocus>
<label for=login>Demo user</label>
<input id=login name=login list=demo-users value="{escape(login)}" autocomplete=username required>
<datalist id=demo-users>{options}</datalist>
<p class=hint>Demo users: {users} (username or the part before @). No password in the demo tenant.</p>
<div class=buttons><button name=action value=approve>Approve</button>
<button name=action value=decline formnovalidate>Decline</button></div>
</form>""",
    )


def login_form(
    tenant: Tenant, action: str, *, request_id: str, app_name: str, login: str = "", error: str | None = None
) -> str:
    """The browser sign-in page of the authorization-code flow: pick a demo user, Approve or Decline."""
    users, options, err = _demo_user_parts(tenant, error)
    return _page(
        "Sign in - local identity platform",
        f"""
<h1>Sign in to {escape(tenant.display_name)}</h1>{err}
<p class=hint>Local identity platform (Entra ID emulator). <b>{escape(app_name)}</b> wants you to sign in.</p>
<form method=post action="{escape(action)}">
<input type=hidden name=request value="{escape(request_id)}">
<label for=login>Demo user</label>
<input id=login name=login list=demo-users value="{escape(login)}" autocomplete=username required autofocus>
<datalist id=demo-users>{options}</datalist>
<p class=hint>Demo users: {users} (username or the part before @). No password in the demo tenant.</p>
<div class=buttons><button id=approve name=action value=approve>Approve</button>
<button name=action value=decline formnovalidate>Decline</button></div>
</form>""",
    )


def error_page(title: str, message: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><div class=error role=alert>{escape(message)}</div>")


def mfa_step(
    tenant: Tenant, action: str, *, hidden: dict[str, str], user_name: str, number: int, reason: str
) -> str:
    """The second step (number matching): the person confirms the number shown here, as in an authenticator."""
    fields = "".join(f"<input type=hidden name='{escape(k)}' value='{escape(v)}'>" for k, v in hidden.items())
    return _page(
        "Verify your identity - local identity platform",
        f"""
<h1>Verify your identity</h1>
<p>{escape(reason)}</p>
<p class=hint>Multi-factor authentication for <b>{escape(user_name)}</b>. Your authenticator app asks for the number
below; confirm that it matches.</p>
<p class=number id=mfa-number style="font-size:3rem;font-weight:600;text-align:center;margin:1rem 0">{number:02d}</p>
<form method=post action="{escape(action)}">{fields}
<div class=buttons><button id=mfa-approve name=mfa value=approve>I see {number:02d} - Approve</button>
<button name=action value=decline>Decline</button></div>
</form>""",
    )


def approved(app_name: str, user_name: str, username: str) -> str:
    return _page(
        "Signed in",
        f"""<h1>You're signed in</h1>
<p class=ok>You signed in to <b>{escape(app_name)}</b> as <b>{escape(user_name)}</b> ({escape(username)}).</p>
<p>You can close this window and return to the app.</p>""",
    )


def declined(app_name: str) -> str:
    return _page(
        "Sign-in declined",
        f"""<h1>Sign-in declined</h1>
<p>You declined the sign-in to <b>{escape(app_name)}</b>. The app will stop waiting.</p>
<p>You can close this window.</p>""",
    )
