"""Route guards: FastAPI dependencies over the accounts of `geo_api.auth`.

`require_role("planner", "admin")` returns the account or raises 401 (anonymous) / 403
(other role); typed aliases `PlannerDep`, `PostOfficerDep`, `AdminDep`, `CurrentAccountDep`.
Applying one to a whole router is one line:
``APIRouter(dependencies=[Depends(require_role("planner", "admin"))])``. Each guard keeps
its roles in `.roles`, so tests can list what every route allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from geo_api.auth import Account
from geo_api.errors import Forbidden, Unauthorized
from geo_api.vocabulary import ROLES

bearer = HTTPBearer(auto_error=False, description="a token from POST /api/auth/login")


def optional_account(request: Request,
                     _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None
                     ) -> Account | None:
    """The caller's account (resolved from the bearer token by the middleware), or None."""
    return getattr(request.state, "account", None)


OptionalAccountDep = Annotated[Account | None, Depends(optional_account)]


def current_account(account: OptionalAccountDep) -> Account:
    if account is None:
        raise Unauthorized("log in first: send Authorization: Bearer <token> from POST /api/auth/login")
    return account


current_account.roles = ROLES  # any account
CurrentAccountDep = Annotated[Account, Depends(current_account)]


def require_role(*roles: str) -> Callable[[Account], Account]:
    """A dependency letting only accounts with one of `roles` through (401 / 403 otherwise)."""
    unknown = set(roles) - set(ROLES)
    assert roles and not unknown, unknown

    def guard(account: CurrentAccountDep) -> Account:
        if account.role not in roles:
            raise Forbidden(f"this needs a {' or '.join(roles)} account; you are logged in as "
                            f"{account.username} ({account.role})", roles=list(roles))
        return account

    guard.roles = tuple(roles)
    guard.__name__ = f"require_{'_or_'.join(roles)}"
    return guard


AdminDep = Annotated[Account, Depends(require_role("admin"))]
PlannerDep = Annotated[Account, Depends(require_role("planner", "admin"))]
PostOfficerDep = Annotated[Account, Depends(require_role("post", "planner", "admin"))]
DonorOrPlannerDep = Annotated[Account, Depends(require_role("donor", "planner", "admin"))]
FunderDep = Annotated[Account, Depends(require_role("donor", "post", "planner", "admin"))]
