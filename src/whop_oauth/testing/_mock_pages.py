"""The mock Whop's two HTML pages: consent and error. Self-contained, no external loads."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import urlsplit

from ._mock_model import MockUser

__all__ = ["PAGE_HEADERS", "consent_page", "error_page"]

#: Inline styles and data: images only; the page never calls out.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_SCOPE_TEXT = {
    "openid": "Confirm your Whop identity",
    "profile": "See your name, username and profile picture",
    "email": "See your email address",
}

_STYLE = """
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
 background:#0f1115;color:#e8e9ed;font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
main{width:min(420px,92vw);background:#181b22;border:1px solid #2a2f3a;border-radius:16px;
 padding:28px;box-shadow:0 20px 60px rgba(0,0,0,.45)}
.brand{display:flex;align-items:center;gap:8px;color:#ff6243;font-weight:700;letter-spacing:.3px}
.brand b{display:inline-block;width:22px;height:22px;border-radius:6px;background:#ff6243}
h1{font-size:21px;margin:18px 0 4px}
.who{display:flex;align-items:center;gap:12px;margin:16px 0;padding:12px;border-radius:12px;
 background:#20242d}
.who img{width:40px;height:40px;border-radius:50%}
.muted{color:#9aa0ad;font-size:13px}
ul{padding-left:20px;margin:8px 0 20px}
li{margin:4px 0}
.buttons{display:flex;gap:10px}
button{flex:1;padding:11px 0;border-radius:10px;border:1px solid #3a404d;font-size:15px;
 font-weight:600;cursor:pointer;background:#20242d;color:#e8e9ed}
button.approve{background:#ff6243;border-color:#ff6243;color:#fff}
footer{margin-top:18px}
"""


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main><div class="brand"><b></b>Whop <span class="muted">mock</span></div>'
        f"{body}</main></body></html>"
    )


def consent_page(
    *,
    app_name: str,
    user: MockUser,
    scopes: Sequence[str],
    company_id: str | None,
    redirect_uri: str,
    flow_id: str,
) -> str:
    """The "Authorize <app>" page: who signs in, what the app gets, Approve / Deny."""
    items = "".join(
        f"<li>{escape(_SCOPE_TEXT.get(scope, f'Permission: {scope}'))}</li>" for scope in scopes
    )
    if company_id:
        items += f"<li>Act for company <code>{escape(company_id)}</code></li>"
    avatar = f'<img alt="" src="{escape(user.picture)}">' if user.picture else ""
    host = urlsplit(redirect_uri).netloc
    body = (
        f"<h1>Authorize {escape(app_name)}</h1>"
        f'<div class="muted">{escape(app_name)} would like to access your Whop account.</div>'
        f'<div class="who">{avatar}<div><div>{escape(user.name)}</div>'
        f'<div class="muted">@{escape(user.username)}</div></div></div>'
        f"<div>This will allow {escape(app_name)} to:</div><ul>{items}</ul>"
        '<form method="post" action="consent">'
        f'<input type="hidden" name="flow" value="{escape(flow_id)}">'
        '<div class="buttons">'
        '<button type="submit" name="decision" value="deny">Deny</button>'
        '<button class="approve" type="submit" name="decision" value="approve">Approve</button>'
        "</div></form>"
        f'<footer class="muted">You will be sent back to {escape(host)}. This is a mock Whop '
        "for development and tests; no real account is used.</footer>"
    )
    return _document(f"Authorize {app_name}", body)


def error_page(message: str) -> str:
    body = f"<h1>Authorization error</h1><p>{escape(message)}</p>"
    return _document("Authorization error", body)
