"""The accounts API: register, login, refresh, logout, the caller (me, my-roles, switch-role), and
a parent's children and the student's own profile (tagged "families" in the documentation)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from astegni.accounts import service
from astegni.accounts.models import (
    ChildIn,
    ChildOut,
    ChildrenOut,
    LoginForm,
    LoginIn,
    LoginOut,
    MeIn,
    RefreshIn,
    RegisterIn,
    RolesOut,
    StudentProfileOut,
    SwitchedRoleOut,
    SwitchRoleIn,
    UserOut,
)
from astegni.core import rate_limits
from astegni.core.deps import UNAUTHORIZED, AppSettings, CurrentUser, Db, TokenClaims
from astegni.core.errors import Unprocessable

router = APIRouter(prefix="/api")

# Tags per route: a parent's children and the student profile have a section of their own in
# the documentation.
ACCOUNTS = ["accounts"]
FAMILIES = ["families"]
NOT_A_PARENT = {403: {"description": "The caller does not hold the parent role"}}


# `async`: FastAPI runs a sync dependency on the threadpool.
async def no_store(response: Response) -> None:
    """Responses carrying tokens are never kept by a browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


NO_STORE = [Depends(no_store)]


async def login_credentials(request: Request) -> LoginIn:
    """JSON {email, password} or the OAuth2 password form (username = email)."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            data = {"email": form.get("username") or form.get("email"), "password": form.get("password")}
        else:
            data = json.loads(await request.body() or b"null")
        return LoginIn.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(
            exc.errors(include_url=False, include_context=False, include_input=False)
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise Unprocessable("Body must be JSON {email, password} or an OAuth2 password form") from None


Credentials = Annotated[LoginIn, Depends(login_credentials)]


@router.post(
    "/register",
    status_code=201,
    tags=ACCOUNTS,
    dependencies=NO_STORE,
    response_model=LoginOut,
    responses={
        409: {"description": "Email already registered"},
        422: {"description": "Invalid body"},
        429: {"description": "Too many registrations from this address; see Retry-After"},
    },
)
async def register(request: Request, body: RegisterIn, db: Db, settings: AppSettings) -> dict[str, Any]:
    return await service.register(db, settings, body, rate_limits.client_key(request))


@router.post(
    "/login",
    tags=ACCOUNTS,
    dependencies=NO_STORE,
    response_model=LoginOut,
    # The body is read by login_credentials, which takes two content types; FastAPI declares
    # one, so both are declared here.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": LoginIn.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": LoginForm.model_json_schema()},
            },
        }
    },
    responses={
        401: {"description": "Wrong email or password"},
        422: {"description": "Invalid body"},
        429: {"description": "Too many login attempts for this email (from this address); see Retry-After"},
    },
)
async def login(request: Request, db: Db, settings: AppSettings, creds: Credentials) -> dict[str, Any]:
    return await service.login(db, settings, creds, rate_limits.client_key(request))


@router.post(
    "/refresh", tags=ACCOUNTS, dependencies=NO_STORE, response_model=LoginOut, responses=UNAUTHORIZED
)
async def refresh_tokens(body: RefreshIn, db: Db, settings: AppSettings) -> dict[str, Any]:
    """Spend the refresh token for a new pair. A token spent before revokes its whole login."""
    return await service.refresh_tokens(db, settings, body.refresh_token)


@router.post("/logout", status_code=204, tags=ACCOUNTS, responses=UNAUTHORIZED)
async def logout(body: RefreshIn, db: Db, settings: AppSettings) -> Response:
    """Revoke the login of this refresh token: it and every token of the same login stop
    refreshing. (Access tokens already issued live out their short lifetime.)"""
    await service.logout(db, settings, body.refresh_token)
    return Response(status_code=204)


@router.get("/me", tags=ACCOUNTS, response_model=UserOut, responses=UNAUTHORIZED)
async def me(user: CurrentUser) -> dict[str, Any]:
    return user.as_json()


@router.get("/my-roles", tags=ACCOUNTS, response_model=RolesOut, responses=UNAUTHORIZED)
async def my_roles(user: CurrentUser) -> dict[str, Any]:
    return {"user_roles": user.roles, "active_role": user.active_role}


@router.post(
    "/switch-role",
    tags=ACCOUNTS,
    dependencies=NO_STORE,
    response_model=SwitchedRoleOut,
    responses={**UNAUTHORIZED, 403: {"description": "Role not held"}},
)
async def switch_role(
    body: SwitchRoleIn, claims: TokenClaims, db: Db, settings: AppSettings
) -> dict[str, Any]:
    return await db.run(service.switch_role, settings, claims, body.role)


@router.put(
    "/me",
    tags=ACCOUNTS,
    response_model=UserOut,
    responses={**UNAUTHORIZED, 422: {"description": "Unknown locale"}},
)
async def update_me(body: MeIn, user: CurrentUser, db: Db) -> dict[str, Any]:
    return await db.run(service.set_locale, user, body.locale)


@router.get(
    "/parent/children",
    tags=FAMILIES,
    response_model=ChildrenOut,
    responses={**UNAUTHORIZED, **NOT_A_PARENT},
)
async def children(claims: TokenClaims, db: Db) -> dict[str, Any]:
    """The caller's children; `id` is the student_profiles.id a session request names."""
    return await db.run(service.children, claims)


@router.post(
    "/parent/children",
    status_code=201,
    tags=FAMILIES,
    response_model=ChildOut,
    responses={
        **UNAUTHORIZED,
        **NOT_A_PARENT,
        409: {"description": "Email already registered"},
        429: {"description": "Too many children created in the last hour; see Retry-After"},
    },
)
async def add_child(body: ChildIn, claims: TokenClaims, db: Db, settings: AppSettings) -> dict[str, Any]:
    """Create a student account for a child and link it to the caller."""
    return await service.add_child(db, settings, claims, body)


@router.get(
    "/student/profile",
    tags=FAMILIES,
    response_model=StudentProfileOut,
    responses={**UNAUTHORIZED, 403: {"description": "The caller does not hold the student role"}},
)
async def student_profile(claims: TokenClaims, db: Db) -> dict[str, Any]:
    """The caller's student profile, with the parents linked to it."""
    return await db.run(service.student_profile, claims)
