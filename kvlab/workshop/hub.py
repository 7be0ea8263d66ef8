"""The dashboard as a JupyterHub service (``kvlab workshop serve --hub-auth``): people are who the hub says.

JupyterHub's own client for its services, `jupyterhub.services.auth.HubOAuth`,
does the talking to the hub, configured by the variables the hub gives a
service it runs (``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL``,
``JUPYTERHUB_CLIENT_ID``, ...):

- a learner's requests carry their server's ``$JUPYTERHUB_API_TOKEN``; the hub
  says whose it is, and whether it may use this service
  (``access:services!service=kvlab-workshop``). A learner is their hub name,
  which nobody else can take; the class code joins nobody.
- the instructor page signs in through the hub (OAuth): it opens for a hub
  user whose token holds INSTRUCT_SCOPE (deploy/ gives it to the user
  ``instructor`` and the group ``instructors``), and then keeps a session
  cookie. The instructor key in the class's folder still opens it too.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import OrderedDict
from urllib.parse import urlencode

from . import records
from .records import Refused

SESSION_SECONDS = 12 * 3600  # an instructor signs in through the hub again after this long
STATE_SECONDS = 600  # a sign-in has this long to come back from the hub
MAX_PENDING = 1000  # sign-ins under way, and sessions, kept at most (the oldest go first)


class HubError(ValueError):
    """The service cannot use the hub's authentication, in one line."""


class _Expiring(OrderedDict):
    """Keys that expire, at most MAX_PENDING of them."""

    def put(self, key: str, value, seconds: float) -> None:
        self[key] = (value, time.monotonic() + seconds)
        while len(self) > MAX_PENDING:
            self.popitem(last=False)

    def take(self, key: str | None, keep: bool = True):
        found = self.get(key) if keep else self.pop(key, None)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]


class Hub:
    """Who a hub token belongs to, and the instructor's sign-in through the hub."""

    def __init__(self) -> None:
        if not os.environ.get("JUPYTERHUB_API_TOKEN"):
            raise HubError("--hub-auth: JUPYTERHUB_API_TOKEN is not set; run the service as a JupyterHub service "
                           "(c.JupyterHub.services, or the chart's hub.services)")
        try:
            from jupyterhub.services.auth import HubOAuth
        except ImportError:
            raise HubError("--hub-auth needs JupyterHub's Python package: pip install jupyterhub") from None
        self.auth = HubOAuth(cache_max_age=60)  # a learner's token is asked about at most once a minute
        if not self.auth.oauth_client_id:
            raise HubError("--hub-auth: JUPYTERHUB_CLIENT_ID is not set; the hub sets it for a service with a URL")
        self._states = _Expiring()
        self._sessions = _Expiring()

    async def _user(self, token: str, use_cache: bool = True) -> dict | None:
        from tornado.web import HTTPError

        try:
            return await self.auth.user_for_token(token, use_cache=use_cache, sync=False)
        except HTTPError:
            raise Refused(503, "the hub did not answer who this is: try again in a moment") from None

    async def learner(self, token: str) -> str | None:
        """The hub user a token belongs to, if it may use this service (a 403 if not); None: not a hub token."""
        if not token:
            return None
        user = await self._user(token)
        if user is None:
            return None
        if user.get("kind") != "user" or not self.auth.check_scopes(self.auth.access_scopes, user):
            raise Refused(403, f"the hub's {user.get('kind', 'token')} {user.get('name')!r} may not use this "
                               f"service (it needs the scope access:services!service={records.HUB_SERVICE})")
        return user["name"]  # as the hub has it: a sign-in name may be longer than a chosen one (an e-mail address)

    def sign_in(self) -> tuple[str, str]:
        """Where to send a browser to sign in through the hub, and the state it must come back with."""
        state = secrets.token_urlsafe(24)
        self._states.put(state, True, STATE_SECONDS)
        return (f"{self.auth.oauth_authorization_url}?" + urlencode({
            "client_id": self.auth.oauth_client_id, "redirect_uri": self.auth.oauth_redirect_uri,
            "response_type": "code", "state": state}), state)

    async def signed_in(self, code: str | None, state: str | None, cookie_state: str | None) -> tuple[str, str]:
        """The hub's answer to a sign-in: (the user's name, a session for the instructor's cookie), or Refused."""
        if not code or not state or state != cookie_state or not self._states.take(state, keep=False):
            raise Refused(400, "that sign-in is not one this service started (or it took over 10 minutes): "
                               "open the instructor page again")
        from tornado.web import HTTPError

        try:
            token = await self.auth.token_for_code(code, sync=False)
        except HTTPError:
            raise Refused(403, "the hub refused that sign-in: open the instructor page again") from None
        user = await self._user(token, use_cache=False)
        if user is None:
            raise Refused(403, "the hub did not say who signed in: open the instructor page again")
        if not self.auth.check_scopes({records.INSTRUCT_SCOPE}, user):
            raise Refused(403, f"{user['name']} is signed in to the hub but is not this class's instructor: a hub "
                               f"admin adds them to the group 'instructors' (scope {records.INSTRUCT_SCOPE})")
        session = secrets.token_urlsafe(32)
        self._sessions.put(session, user["name"], SESSION_SECONDS)
        return user["name"], session

    def instructor(self, session: str | None) -> str | None:
        """The instructor a session cookie belongs to, or None."""
        return self._sessions.take(session) if session else None
