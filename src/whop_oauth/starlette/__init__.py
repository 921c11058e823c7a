"""Sign in with Whop for Starlette and FastAPI.

```python
whop = WhopAuth(client, manager, secret_keys=[session_key])
app = Starlette(routes=[*whop.routes, Route("/", home)], middleware=[whop.middleware])

async def home(request):
    user = current_user(request)                      # WhopUser | None, also request.user
    me = await user_http_client(request).get("/accounts/me")   # Bearer, refreshed when due
```
"""

from ._auth import ErrorHandler as ErrorHandler
from ._auth import TenantVerifier as TenantVerifier
from ._auth import WhopAuth as WhopAuth
from ._backend import WhopAuthBackend as WhopAuthBackend
from ._backend import WhopUser as WhopUser
from ._cookies import SessionData as SessionData
from ._helpers import UserHTTPClient as UserHTTPClient
from ._helpers import csrf_token as csrf_token
from ._helpers import current_user as current_user
from ._helpers import sign_in_url as sign_in_url
from ._helpers import user_http_client as user_http_client
from ._middleware import WhopAuthMiddleware as WhopAuthMiddleware
from ._pages import status_for as status_for
from ._redirects import safe_return_path as safe_return_path

__all__ = [
    "ErrorHandler",
    "SessionData",
    "TenantVerifier",
    "UserHTTPClient",
    "WhopAuth",
    "WhopAuthBackend",
    "WhopAuthMiddleware",
    "WhopUser",
    "csrf_token",
    "current_user",
    "safe_return_path",
    "sign_in_url",
    "status_for",
    "user_http_client",
]
