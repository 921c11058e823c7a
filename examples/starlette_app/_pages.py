"""The example app's one HTML page: a sign-in button, or the signed-in user's card."""

from __future__ import annotations

from html import escape

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
"""


def _document(body: str, *, demo: bool) -> str:
    banner = (
        '<div class="banner">Demo mode: signing in against the built-in mock Whop '
        "(set WHOP_CLIENT_ID to use the real one).</div>"
        if demo
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Sign in with Whop</title><style>{_STYLE}</style></head>"
        f"<body>{banner}{body}</body></html>"
    )


def signed_out_page(*, login_url: str, demo: bool) -> str:
    body = (
        '<main class="card"><h1>whop_oauth example</h1>'
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
