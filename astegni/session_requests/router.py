"""The session-request API: create, my-requests, cancel, the tutor's list,
detail, accept/reject, and my-students.

Each handler takes the token's claims (no database work) and makes one call of
astegni/session_requests/service.py: one transaction, so one thread hop; a create without an
Idempotency-Key is one statement on the event loop and takes none (service.create).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from astegni.core.deps import UNAUTHORIZED, Db, TokenClaims, bearer_claims, get_db
from astegni.core.errors import BadRequest
from astegni.core.models import INT_MAX, parse_body
from astegni.session_requests import idempotency, service
from astegni.session_requests.models import (
    CancelIn,
    CancelledOut,
    CreatedOut,
    RespondedOut,
    RespondIn,
    SessionRequestIn,
    Status,
)

router = APIRouter(prefix="/api/session-requests", tags=["session requests"])

RequestId = Annotated[int, Path(gt=0, le=INT_MAX)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (default 50, at most 100)")]
Before = Annotated[
    int | None, Query(gt=0, le=INT_MAX, description="Cursor: the next page, as given in the Link header")
]
StatusFilter = Annotated[Status | None, Query(description="Only requests in this (effective) status")]
TutorFilter = Annotated[
    int | None, Query(gt=0, le=INT_MAX, description="Only requests to this tutor (tutor_profiles.id)")
]

NOT_A_TUTOR = {403: {"description": "The caller has no tutor profile"}}
NOT_THE_TUTORS = {404: {"description": "Not one of this tutor's requests"}}
NOT_PENDING = {409: {"description": "No longer pending (answered, cancelled or expired)"}}
PAGED = {"headers": {"Link": {"description": '`<url>; rel="next"` when there is a next page'}}}
CREATE_ERRORS = UNAUTHORIZED | {
    400: {"description": "Student/Parent profile not found, or the tutor profile is the caller's own"},
    403: {
        "description": "Active role is not student or parent, requested_to_id is not your child, "
        "or the tutor has blocked you (`This tutor is not accepting requests from you`)"
    },
    404: {"description": "Tutor not found / Package not found (missing, inactive or not that tutor's)"},
    409: {
        "description": "A pending request for this student and package exists, sent by you or "
        "by someone else for the same student (`existing_request_id`)"
    },
    429: {"description": "Too many requests created in the last minute (see Retry-After)"},
}


@router.post(
    "",
    response_model=CreatedOut,
    responses=CREATE_ERRORS
    | {
        422: {
            "description": "An invalid body (shared_students non-empty: shared sessions are not offered "
            "yet), or an Idempotency-Key reused with another body",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
        }
    },
    # What the handler reads itself, declared for the OpenAPI document from the same models.
    openapi_extra={
        "parameters": [idempotency.PARAMETER],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SessionRequestIn.model_json_schema()}},
        },
        "security": [{"OAuth2PasswordBearer": []}],
    },
)
async def create_session_request(request: Request) -> JSONResponse:
    """A request for a tutor's package, for the caller (student) or their child (parent), and
    its card in the pair's conversation."""
    # The hottest route reads its token, database, body and Idempotency-Key itself, in that
    # order: FastAPI resolving them as declared parameters cost a fifth of the route's CPU and
    # 0.72 -> 0.59 of make bench's ratio in alternated pairs (docs/benchmarks.md, 2026-11-30).
    claims = bearer_claims(request)
    db = await get_db(request)
    try:
        raw = await request.body()
    except ClientDisconnect:  # gone mid-upload: nobody reads the answer, and it is no server error
        raise BadRequest("The body did not arrive") from None
    body = parse_body(SessionRequestIn, raw, request.headers.get("content-type"))
    key = idempotency.key_of(request.headers)
    answer = await service.create(db, request.app.state.settings, claims, body, key)
    return answer.response()


def _next_link(request: Request, cursor: int | None) -> dict[str, str]:
    """A relative reference (RFC 8288 resolves it against the request's URL): built from the
    path and query only, never from the Host header, which the client chooses."""
    if cursor is None:
        return {}
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "before"]
    target = quote(request.scope.get("root_path", "") + request.scope["path"])
    return {"Link": f'<{target}?{urlencode([*query, ("before", cursor)])}>; rel="next"'}


def _json(data: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    # jsonable_encoder: money as JSON numbers (Decimal -> float), ISO timestamps with offset
    # (+00:00). Returned as a response, so a declared response_model documents the body and
    # leaves it as it is.
    return JSONResponse(jsonable_encoder(data), headers=headers)


def _listing(request: Request, page: tuple[list[dict[str, Any]], int | None]) -> JSONResponse:
    rows, cursor = page
    return _json(rows, _next_link(request, cursor))


@router.get("/my-requests", responses=UNAUTHORIZED | {200: PAGED})
async def my_requests(
    request: Request,
    claims: TokenClaims,
    db: Db,
    status: StatusFilter = None,
    tutor_id: TutorFilter = None,
    limit: Limit = 50,
    before: Before = None,
) -> list[dict[str, Any]]:
    """The requests the caller sent (whatever the role) and those sent for the caller as the
    learner (a child sees what a parent booked), newest first; each names its `requester` and
    its `learner`. Only the requester may cancel."""
    page = await db.run(service.my_requests_page, claims, status, tutor_id, before, limit)
    return _listing(request, page)


@router.post(
    "/{request_id}/cancel",
    response_model=CancelledOut,
    responses=UNAUTHORIZED
    | NOT_PENDING
    | {
        403: {"description": "The caller is the request's tutor or learner, not its requester"},
        404: {"description": "No such request of the caller's"},
    },
)
async def cancel_request(
    request_id: RequestId, claims: TokenClaims, db: Db, body: CancelIn | None = None
) -> JSONResponse:
    return _json(await db.run(service.cancel, claims, request_id, body.reason if body else None))


@router.get("/tutor", responses=UNAUTHORIZED | NOT_A_TUTOR | {200: PAGED})
async def tutor_requests(
    request: Request,
    claims: TokenClaims,
    db: Db,
    status: StatusFilter = None,
    limit: Limit = 50,
    before: Before = None,
) -> list[dict[str, Any]]:
    """The tutor's incoming requests, newest first."""
    return _listing(request, await db.run(service.tutor_page, claims, status, before, limit))


@router.get("/tutor/my-students", responses=UNAUTHORIZED | NOT_A_TUTOR | {200: PAGED})
async def my_students(
    request: Request, claims: TokenClaims, db: Db, limit: Limit = 50, before: Before = None
) -> list[dict[str, Any]]:
    """The tutor's enrolled students (one row per student and package), newest first."""
    return _listing(request, await db.run(service.my_students, claims, before, limit))


@router.get(
    "/tutor/{request_id}",
    responses=UNAUTHORIZED | NOT_A_TUTOR | NOT_THE_TUTORS,
)
async def tutor_request(request_id: RequestId, claims: TokenClaims, db: Db) -> dict[str, Any]:
    """One incoming request, with its history of transitions."""
    return _json(await db.run(service.tutor_request, claims, request_id))


@router.patch(
    "/tutor/{request_id}",
    response_model=RespondedOut,
    responses=UNAUTHORIZED | NOT_A_TUTOR | NOT_THE_TUTORS | NOT_PENDING,
)
async def respond_to_request(
    request_id: RequestId, body: RespondIn, claims: TokenClaims, db: Db
) -> JSONResponse:
    """Accept (enrols the student) or reject a pending request."""
    return _json(await db.run(service.respond, claims, request_id, body.status, body.rejected_reason))
