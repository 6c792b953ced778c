"""Sessions that stay true after the login.

`SessionKeeper.sweep()` runs every `SWEEP_EVERY_S`: it ends the sessions idle too long or
past their lifetime, starts a re-check with the PBX of every account last checked
`auth.recheck_minutes` ago, and closes every socket whose session is gone or whose role
is no longer the one the socket was opened with. So whichever way a session ends
(logout, idle, lifetime, a failed re-check, a new login in the same browser) or is
demoted, its screens stop within about a second: the browser comes back through the
login page, as what the account now is.

A re-check asks `POST /v1/auth` with the password given at login: `admin` stays a
supervisor, any other level becomes a viewer, a refusal (wrong password now, account
gone or disabled) ends the session. A PBX that cannot be asked changes nothing; the
next sweep asks again. An action re-checks first when the last check is older than
`auth.recheck_minutes` (`SessionKeeper.fresh`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from wallboard.hub import CLOSE_LOGGED_OUT, Hub
from wallboard.logs import loggable
from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.principal import Auth, Principal, Role, Session

log = logging.getLogger("wallboard.sessions")

SWEEP_EVERY_S = 1.0
RETRY_UNREACHABLE_S = 30.0  # a PBX that did not answer a background re-check is asked again after this
# These PBX errors mean "we could not ask", not "the account is refused".
UNREACHABLE_CODES = frozenset({"TIMEOUT", "UNREACHABLE", "BAD_RESPONSE"})


def unreachable(error: PbxError) -> bool:
    return error.code in UNREACHABLE_CODES or error.code.startswith("HTTP_5")


class SessionKeeper:
    """The periodic upkeep of one tenant's sessions (app.py runs `sweep` every SWEEP_EVERY_S)."""

    def __init__(self, auth: Auth, pbx: PbxClient, hub: Hub, *, recheck_seconds: float) -> None:
        self.auth = auth
        self.pbx = pbx
        self.hub = hub
        self.recheck_seconds = recheck_seconds
        self._checking: dict[str, asyncio.Task[None]] = {}

    async def fresh(self, principal: Principal) -> Principal | None:
        """The principal as the PBX says it is now, asking it first when the last check is
        older than auth.recheck_minutes; None when the session ended. PbxError when the PBX
        cannot be asked."""
        if principal.session_id is None:
            return principal
        session = self.auth.sessions.peek(principal.session_id)
        if session is None:
            return None
        if session.checked <= self.auth.clock() - self.recheck_seconds:
            if await recheck(self.auth, self.pbx, self.hub, session) is None:
                return None
        return replace(principal, role=session.role)

    async def sweep(self) -> None:
        # With cluster.redis_url this also drops the sessions ended on other nodes (logout, a
        # failed re-check there) and takes their new roles: their screens here close below.
        for session in await self.auth.sessions.refresh():
            log.info("session of %s ended: idle, past its lifetime or ended elsewhere", loggable(session.username))
        now = self.auth.clock()
        for session in self.auth.sessions.due(self.recheck_seconds):
            if session.id not in self._checking and session.recheck_after <= now \
                    and await self.auth.sessions.claim_recheck(session, RETRY_UNREACHABLE_S):
                task = asyncio.get_running_loop().create_task(self._recheck_in_background(session))
                self._checking[session.id] = task
        close_stale_sockets(self.auth, self.hub)
        await self.auth.sockets.renew()  # shared slots of this node's sockets kept counted

    async def _recheck_in_background(self, session: Session) -> None:
        try:
            await recheck(self.auth, self.pbx, self.hub, session)
        except PbxError:
            pass  # logged; asked again RETRY_UNREACHABLE_S later
        except Exception:
            log.exception("re-check of %s failed", loggable(session.username))
        finally:
            self._checking.pop(session.id, None)

    async def stop(self) -> None:
        for task in list(self._checking.values()):
            task.cancel()
        await asyncio.gather(*self._checking.values(), return_exceptions=True)


def close_stale_sockets(auth: Auth, hub: Hub) -> int:
    """Close the sockets of sessions that ended, or whose role changed."""
    live = auth.sessions.roles()
    return hub.close_if(
        lambda screen: screen.session_id is not None and live.get(screen.session_id) != screen.kind,
        CLOSE_LOGGED_OUT, "session ended")


async def recheck(auth: Auth, pbx: PbxClient, hub: Hub, session: Session) -> Role | None:
    """Ask the PBX what the account is now and apply it: the role, or None when the session
    ended. PbxError when the PBX cannot be asked (nothing changes but the next try's time)."""
    if session.credential is None:
        return session.role
    try:
        account = await pbx.login(session.username, session.credential.reveal())
    except PbxError as error:
        if unreachable(error):
            log.warning("re-check of %s: the PBX did not answer (%s)", loggable(session.username), error.code)
            session.recheck_after = auth.clock() + RETRY_UNREACHABLE_S
            raise
        await auth.sessions.finish(session.id)
        log.info("session of %s ended: the PBX refused the account (%s)", loggable(session.username), error.code)
        close_stale_sockets(auth, hub)
        return None
    if not account.user_enabled:
        await auth.sessions.finish(session.id)
        log.info("session of %s ended: the account is disabled", loggable(session.username))
        close_stale_sockets(auth, hub)
        return None
    role: Role = "supervisor" if account.level == "admin" else "viewer"
    session.checked = auth.clock()
    changed = role != session.role
    session.role = role
    await auth.sessions.save(session)
    if changed:
        log.info("%s is now %s (PBX level %s)", loggable(session.username), role, loggable(account.level))
        close_stale_sockets(auth, hub)
    return role

