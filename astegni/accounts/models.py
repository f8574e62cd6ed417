"""The bodies and answers of the accounts endpoints: registration, login, tokens, the caller,
roles, and a parent's children."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field, field_validator

from astegni.accounts.passwords import GivenPassword, NewPassword
from astegni.core.models import ApiModel, Name, Text

Role = Literal["student", "parent", "tutor"]
Locale = Literal["en", "am"]


# ------------------------------------------------------------------ bodies


class AccountIn(ApiModel):
    """The fields of a new account: a registration, or a child a parent creates."""

    email: EmailStr
    password: NewPassword
    first_name: Name
    father_name: Name
    grandfather_name: Text(100) | None = None
    phone: Text(30) | None = None
    grade_level: Text(50) | None = None
    locale: Locale | None = None


class RegisterIn(AccountIn):
    roles: Annotated[list[Role], Field(min_length=1, max_length=3)]

    @field_validator("roles")
    @classmethod
    def _distinct(cls, roles: list[str]) -> list[str]:
        return list(dict.fromkeys(roles))


class ChildIn(AccountIn):
    """A new student account, linked to the calling parent; the child logs in with these."""

    school: Text(200) | None = None


class LoginIn(ApiModel):
    email: Annotated[str, Field(min_length=1, max_length=254)]
    password: GivenPassword


# The OAuth2 password form that POST /api/login also takes (username = the email). It is read into
# a LoginIn; this model only describes it in the OpenAPI document.
class LoginForm(BaseModel):
    username: str
    password: str


class RefreshIn(ApiModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


class SwitchRoleIn(ApiModel):
    role: Role


class MeIn(ApiModel):
    locale: Locale


# ------------------------------------------------------------------ answers


class UserOut(BaseModel):
    """The caller; `role_ids` maps each role held to the id of its profile."""

    id: int
    email: str
    first_name: str
    father_name: str
    roles: list[Role]
    active_role: Role
    role_ids: dict[Role, int]
    locale: Locale


class LoginOut(BaseModel):
    """The tokens of a login (register, login, refresh) and its user."""

    access_token: str
    refresh_token: str
    token_type: str
    user: UserOut


class RolesOut(BaseModel):
    user_roles: list[Role]
    active_role: Role


class SwitchedRoleOut(BaseModel):
    """The new active role, and tokens that carry it."""

    active_role: Role
    user_roles: list[Role]
    access_token: str
    refresh_token: str
    token_type: str


class ChildOut(BaseModel):
    """`id` is the student_profiles.id a session request names."""

    id: int
    user_id: int
    name: str
    grade_level: str | None


class ChildrenOut(BaseModel):
    children: list[ChildOut]


class ParentOut(BaseModel):
    id: int
    user_id: int
    name: str


class StudentProfileOut(BaseModel):
    id: int
    user_id: int
    email: str
    first_name: str
    father_name: str
    grandfather_name: str | None
    full_name: str
    grade_level: str | None
    school: str | None
    bio: str | None
    created_at: datetime
    parents: list[ParentOut]
