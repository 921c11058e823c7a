"""The example app's pages: sign-in, the user's card, their userinfo, a failed sign-in.

They share one stylesheet and the demo banner, so the app looks like one small product.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from whop_oauth.starlette import WhopUser

#: Inline CSS, inline/data images only: the page loads nothing from elsewhere.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_STYLE = """
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;
 justify-content:center;gap:18px;background:#f4f4f6;color:#1c1d21;
 font:16px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
.card{width:min(420px,92vw);background:#fff;border-radius:18px;padding:32px;
 box-shadow:0 10px 40px rgba(20,20,40,.10);text-align:center}
h1{font-size:22px;margin:0 0 6px}
p{margin:6px 0;color:#5c5f6a}
.avatar{width:96px;height:96px;border-radius:50%;margin:0 auto 14px;display:block;
 background:#e7e7ee}
.name{font-size:22px;font-weight:700;color:#1c1d21;margin:0}
.email{color:#5c5f6a;margin:2px 0 14px}
.meta{font-size:13px;color:#8a8d97;margin:0 0 20px;word-break:break-all}
.button{display:inline-block;padding:12px 22px;border-radius:12px;border:0;font:inherit;
 font-weight:600;line-height:20px;cursor:pointer;text-decoration:none}
.primary{background:#ff6243;color:#fff}
.secondary{background:#eeeef3;color:#1c1d21}
.row{display:flex;gap:10px;justify-content:center;align-items:center}
form{margin:0}
.banner{font-size:13px;color:#8a5a00;background:#fff4d6;border-radius:10px;padding:8px 14px}
.notice{font-size:14px;color:#1f6b3a;background:#e3f6e9;border-radius:10px;padding:8px 14px}
.wide{width:min(640px,94vw);text-align:left}
table{width:100%;border-collapse:collapse;margin:10px 0 20px;font-size:14px}
th,td{padding:7px 8px;border-bottom:1px solid #eeeef3;vertical-align:top;text-align:left}
th{color:#8a8d97;font-weight:600;width:34%;white-space:nowrap}
td{word-break:break-word}
td img{width:40px;height:40px;border-radius:50%}
.detail{font-size:13px;color:#8a8d97}
code{font-size:13px;background:#f4f4f6;border-radius:6px;padding:1px 5px}
"""

#: Claims longer than this are cut in the table (a picture is shown as the picture).
_MAX_VALUE = 120


def _document(body: str, *, demo: bool, title: str = "Sign in with Whop") -> str:
    banner = (
        '<div class="banner">Demo mode: signing in against the built-in mock Whop '
        "(set WHOP_CLIENT_ID to use the real one).</div>"
        if demo
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{banner}{body}</body></html>"
    )


def signed_out_page(*, login_url: str, demo: bool, just_signed_out: bool = False) -> str:
    notice = (
        '<div class="notice" role="status">You\u2019re signed out.</div>' if just_signed_out else ""
    )
    body = (
        f'{notice}<main class="card"><h1>whop_oauth example</h1>'
        "<p>Sign in to see your Whop profile.</p><p>&nbsp;</p>"
        f'<a class="button primary" href="{escape(login_url)}">Sign in with Whop</a></main>'
    )
    return _document(body, demo=demo)


def profile_page(user: WhopUser, *, csrf_token: str, logout_url: str, demo: bool) -> str:
    picture = (
        f'<img class="avatar" alt="" src="{escape(user.picture)}">'
        if user.picture
        else '<div class="avatar"></div>'
    )
    body = (
        f'<main class="card" id="profile">{picture}'
        f'<p class="name">{escape(user.name or user.id)}</p>'
        f'<p class="email">{escape(user.email or "no email shared")}</p>'
        f'<p class="meta">{escape(user.id)} · tenant {escape(user.tenant)}<br>'
        f"scopes: {escape(' '.join(user.scopes))}</p>"
        '<div class="row"><a class="button secondary" href="/me">View /me</a>'
        f'<form method="post" action="{escape(logout_url)}">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
        '<button class="button primary" type="submit">Sign out</button></form></div></main>'
    )
    return _document(body, demo=demo)


def _cell(name: str, value: Any) -> str:
    picture = isinstance(value, str) and value.startswith(("https://", "data:image/"))
    if name == "picture" and picture:
        return f'<img alt="" src="{escape(value)}">'
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > _MAX_VALUE:
        text = text[: _MAX_VALUE - 1] + "\u2026"
    return escape(text)


def userinfo_page(claims: Mapping[str, Any], *, demo: bool) -> str:
    """The provider's userinfo as a table: pictures as pictures, long values cut."""
    rows = "".join(
        f"<tr><th>{escape(str(name))}</th><td>{_cell(str(name), value)}</td></tr>"
        for name, value in claims.items()
    )
    body = (
        '<main class="card wide" id="userinfo"><h1>Your profile, from the provider</h1>'
        "<p>What the provider\u2019s userinfo endpoint says about you, fetched with your "
        "access token (refreshed first if it was due).</p>"
        f"<table>{rows}</table>"
        '<div class="row"><a class="button secondary" href="/">\u2190 Back</a>'
        '<a class="button secondary" href="/me?format=json">As JSON</a></div></main>'
    )
    return _document(body, demo=demo, title="Your profile")


def error_page(
    *, title: str, message: str, detail: str | None, try_again_url: str, demo: bool
) -> str:
    """A failed sign-in, in the app's own look; "Try again" returns to where the user was going."""
    said = f'<p class="detail">The provider said: <code>{escape(detail)}</code></p>'
    detail_html = said if detail else ""
    body = (
        f'<main class="card" id="error"><h1>{escape(title)}</h1><p>{escape(message)}</p>'
        f'{detail_html}<p>&nbsp;</p><div class="row">'
        f'<a class="button primary" href="{escape(try_again_url)}">Try again</a>'
        '<a class="button secondary" href="/">Home</a></div></main>'
    )
    return _document(body, demo=demo, title=title)
