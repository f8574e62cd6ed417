"""The bodies of GET/PUT /api/me/notifications."""

from __future__ import annotations

from pydantic import ConfigDict, create_model

from astegni.notifications import KINDS

# {kind: true|false} for some kinds; an unknown kind or a value that is not a boolean is a 422.
PreferencesIn = create_model(
    "NotificationPreferencesIn",
    __config__=ConfigDict(extra="forbid", strict=True),
    **{kind: (bool | None, None) for kind in KINDS},
)
# Every kind, on or off.
PreferencesOut = create_model("NotificationPreferences", **{kind: (bool, ...) for kind in KINDS})
