"""The bodies of the session-request endpoints and their validation (422 with clear messages)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from astegni.core.errors import Unprocessable
from astegni.core.models import INT_MAX, ApiModel, Text
from astegni.i18n.ethiopian import MONTHS_EN

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_SPECIFIC_DATES = 60
MAX_MESSAGE = 2000
MAX_PREFERRED_SCHEDULE = 1000
MAX_YEARS = 5
YEARS = (2000, 2100)
SHARED_NOT_OFFERED = "Shared (cost-sharing) sessions are not offered yet"
MAX_PRICE = Decimal("1000000")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

Id = Annotated[int, Field(gt=0, le=INT_MAX)]
Status = Literal["pending", "accepted", "rejected", "cancelled", "expired"]


def _time(value: str | None, field: str) -> dt.time | None:
    if value is None:
        return None
    if not _HHMM.match(value):
        raise ValueError(f"{field} must be a time written HH:MM (24-hour), e.g. 14:00")
    return dt.time.fromisoformat(value)


class SessionRequestIn(ApiModel):
    """POST /api/session-requests. Unknown fields (status, requester_id, ...) are ignored; nulls
    mean "not given"."""

    tutor_id: Id
    package_id: Id
    message: Text(MAX_MESSAGE) | None = None
    # None: to be arranged in the chat (days or specific_dates alone imply their type).
    schedule_type: Literal["recurring", "specific_dates"] | None = None
    days: Annotated[list[str], Field(max_length=7)] = Field(default_factory=list)
    specific_dates: Annotated[list[dt.date], Field(max_length=MAX_SPECIFIC_DATES)] = Field(
        default_factory=list
    )
    start_time: Annotated[str, Field(max_length=5, examples=["14:00"])] | None = None
    end_time: Annotated[str, Field(max_length=5, examples=["16:00"])] | None = None
    counter_offer_price: (
        Annotated[Decimal, Field(gt=0, le=MAX_PRICE, decimal_places=2, allow_inf_nan=False)] | None
    ) = None
    # student_profiles.id of the child; required when the active role is parent.
    requested_to_id: Id | None = None
    timezone: Annotated[str, Field(max_length=64, examples=["Africa/Addis_Ababa"])] | None = None
    # What the original Astegni page also sends: its own summary of the schedule, and the years
    # and months a recurring schedule covers.
    preferred_schedule: Text(MAX_PREFERRED_SCHEDULE) | None = None
    year_range: Annotated[
        list[Annotated[int, Field(ge=YEARS[0], le=YEARS[1])]], Field(max_length=MAX_YEARS)
    ] = Field(default_factory=list)
    months: Annotated[list[str], Field(max_length=12)] = Field(default_factory=list)
    num_students: (
        Annotated[int, Field(ge=1, le=1, description="1: shared sessions are not offered yet")] | None
    ) = None
    shared_students: list[Any] | None = Field(None, description=f"null or empty: {SHARED_NOT_OFFERED}")

    @field_validator("schedule_type", mode="before")
    @classmethod
    def _blank_schedule_type(cls, value: Any) -> Any:
        return value or None

    @field_validator("preferred_schedule")
    @classmethod
    def _blank_preferred_schedule(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("num_students", mode="before")
    @classmethod
    def _one_student(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            raise ValueError(f"{SHARED_NOT_OFFERED}: num_students must be 1")
        return value

    @field_validator("shared_students", mode="before")
    @classmethod
    def _no_shared_students(cls, value: Any) -> Any:
        if value is None or value == []:
            return value
        raise ValueError(f"{SHARED_NOT_OFFERED}: send shared_students empty or null")

    @field_validator("year_range", "months", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("year_range")
    @classmethod
    def _distinct_years(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("year_range must not repeat a year")
        return sorted(value)

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[str]) -> list[str]:
        months = []
        for item in value:
            name = item.strip().capitalize()
            if name not in MONTHS_EN:
                raise ValueError(f"months must be month names (January .. December); got {item!r}")
            if name in months:
                raise ValueError(f"{name} is listed twice in months")
            months.append(name)
        return months

    @field_validator("message")
    @classmethod
    def _blank_message(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            return value  # the list type check reports it
        days = []
        for item in value:
            name = item.strip().capitalize() if isinstance(item, str) else None
            if name not in WEEKDAYS:
                raise ValueError(f"days must be weekday names ({', '.join(WEEKDAYS)}); got {item!r}")
            if name in days:
                raise ValueError(f"{name} is listed twice in days")
            days.append(name)
        return days

    @field_validator("specific_dates", mode="before")
    @classmethod
    def _no_null_dates(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("specific_dates")
    @classmethod
    def _distinct_dates(cls, value: list[dt.date]) -> list[dt.date]:
        if len(set(value)) != len(value):
            raise ValueError("specific_dates must not repeat a date")
        return sorted(value)

    @field_validator("start_time", "end_time")
    @classmethod
    def _hhmm(cls, value: str | None, info: Any) -> str | None:
        _time(value, info.field_name)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as Africa/Addis_Ababa"
            ) from None
        return value

    @model_validator(mode="after")
    def _schedule(self) -> SessionRequestIn:
        start, end = _time(self.start_time, "start_time"), _time(self.end_time, "end_time")
        if (start is None) != (end is None):
            raise ValueError("start_time and end_time go together: give both or neither")
        if start is not None and end is not None and start >= end:
            raise ValueError("start_time must be before end_time")
        if self.schedule_type is None and self.days:
            self.schedule_type = "recurring"
        elif self.schedule_type is None and self.specific_dates:
            self.schedule_type = "specific_dates"
        if self.schedule_type == "recurring":
            if not self.days:
                raise ValueError("a recurring schedule needs days")
            if self.specific_dates:
                raise ValueError("specific_dates apply only to schedule_type 'specific_dates'")
        elif self.schedule_type == "specific_dates":
            if not self.specific_dates:
                raise ValueError("schedule_type 'specific_dates' needs at least one date in specific_dates")
            if self.days:
                raise ValueError("days apply only to schedule_type 'recurring'")
        return self

    def check_dates_not_past(self, timezone: str) -> None:
        """No date before today where the request is made (needs the resolved timezone)."""
        today = dt.datetime.now(ZoneInfo(timezone)).date()
        for i, day in enumerate(self.specific_dates):
            if day < today:
                raise Unprocessable(
                    [
                        {
                            "type": "value_error",
                            "loc": ["body", "specific_dates", i],
                            "msg": f"{day.isoformat()} is in the past (today is {today.isoformat()} "
                            f"in {timezone})",
                        }
                    ]
                )

    def db_params(self, timezone: str) -> dict[str, Any]:
        return {
            "tutor_id": self.tutor_id,
            "package_id": self.package_id,
            "requested_to_id": self.requested_to_id,
            "message": self.message,
            "schedule_type": self.schedule_type,
            "days": self.days,
            "specific_dates": self.specific_dates,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "timezone": timezone,
            "counter_offer_price": self.counter_offer_price,
            "preferred_schedule": self.preferred_schedule,
            "year_range": self.year_range,
            "months": self.months,
            "num_students": self.num_students or 1,
        }


class CreatedOut(BaseModel):
    success: bool
    message: str
    request_id: int
    conversation_id: int
    message_id: int
    created_at: str


class RespondedOut(BaseModel):
    """The tutor's answer. agreed_price: the enrolment's price once accepted; already_enrolled
    (only when true): an earlier enrolment in the package stands, with its price."""

    success: bool
    message: str
    request_id: int
    status: Literal["accepted", "rejected"]
    responded_at: dt.datetime
    agreed_price: float | None = None
    already_enrolled: bool = False


class CancelledOut(BaseModel):
    success: bool
    message: str
    request_id: int
    status: Literal["cancelled"]


class RespondIn(ApiModel):
    """PATCH /api/session-requests/tutor/{id}."""

    status: Literal["accepted", "rejected"]
    rejected_reason: Text(500) | None = None


class CancelIn(ApiModel):
    reason: Text(500) | None = None
