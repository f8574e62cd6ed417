"""The session-request router: create, my-requests, cancel, the tutor's list, detail,
accept/reject and my-students. Its handlers live with their domain in astegni/session_requests/."""

from astegni.session_requests.router import router

__all__ = ["router"]
