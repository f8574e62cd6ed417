"""What the session-request API says: the sentences of its answers (clients match on them), and
the fixed answer of each outcome of session_request_create (astegni/session_requests/functions.sql)."""

from __future__ import annotations

from typing import Any

CREATED = "Session request sent successfully"
DUPLICATE = (
    "Request already sent. You have a pending request for this package (Request ID: {id}, sent on "
    "{date}). Please wait for the tutor's response."
)
# A pending request for the same learner and package that someone else sent: a parent for their
# child, or the child for themselves.
DUPLICATE_OTHER = (
    "Request already sent. A pending request for this package already exists for this student "
    "(Request ID: {id}, sent on {date}). Please wait for the tutor's response."
)
STUDENT_PROFILE_MISSING = "Student profile not found. Please complete your student profile first."
PARENT_PROFILE_MISSING = "Parent profile not found. Please complete your parent profile first."
ROLE_FORBIDDEN = "Only students and parents can request sessions. Switch to your student or parent role."
NOT_YOUR_CHILD = "requested_to_id is not one of your children"
OWN_PROFILE = "You cannot request a session from your own tutor profile"
NOT_A_TUTOR = "Only tutors have incoming session requests"
REQUEST_NOT_FOUND = "Session request not found"
ALREADY_ENROLLED = (
    "Session request accepted; the student was already enrolled in this package, and that "
    "enrolment (with its agreed price) is kept"
)
BLOCKED = "This tutor is not accepting requests from you"

# The outcomes of session_request_create whose answer is fixed.
FIXED_ANSWERS: dict[str, tuple[int, Any]] = {
    "forbidden_role": (403, ROLE_FORBIDDEN),
    "no_student_profile": (400, STUDENT_PROFILE_MISSING),
    "no_parent_profile": (400, PARENT_PROFILE_MISSING),
    "not_your_child": (403, NOT_YOUR_CHILD),
    "own_tutor_profile": (400, OWN_PROFILE),
    "tutor_not_found": (404, "Tutor not found"),
    "blocked": (403, BLOCKED),
    "package_not_found": (404, "Package not found"),
    "requested_to_required": (
        422,
        [
            {
                "type": "missing",
                "loc": ["body", "requested_to_id"],
                "msg": "requested_to_id (the child's student profile id) is required when requesting "
                "as a parent",
            }
        ],
    ),
}
