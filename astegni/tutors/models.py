"""The bodies and answers of the tutor endpoints: a tutor's public profile and packages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from astegni.core.models import ApiModel, ClockTime, Text

Weekday = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ScheduleType = Literal["recurring", "specific_dates", "flexible"]
SessionFormat = Literal["online", "in_person", "hybrid"]
# ETB, at most two decimals, sent as a JSON number.
HourlyRate = Annotated[Decimal, Field(gt=0, le=100_000, decimal_places=2)]


class PackageIn(ApiModel):
    name: Text(200, 1)
    description: Text(2000) | None = None
    hourly_rate: HourlyRate
    schedule_type: ScheduleType = "recurring"
    schedule_days: Annotated[list[Weekday], Field(max_length=7)] = Field(default_factory=list)
    start_time: ClockTime | None = None
    end_time: ClockTime | None = None
    session_format: SessionFormat = "online"
    is_active: bool = True

    @field_validator("schedule_days")
    @classmethod
    def _distinct(cls, days: list[str]) -> list[str]:
        return list(dict.fromkeys(days))

    @model_validator(mode="after")
    def _times(self) -> PackageIn:
        if self.start_time and self.end_time and self.start_time >= self.end_time:
            raise ValueError("start_time must be before end_time")
        return self


class PackagePatch(ApiModel):
    """PUT body: the fields given replace the package's; the others keep their values."""

    name: Text(200, 1) | None = None
    description: Text(2000) | None = None
    hourly_rate: HourlyRate | None = None
    schedule_type: ScheduleType | None = None
    schedule_days: Annotated[list[Weekday], Field(max_length=7)] | None = None
    start_time: ClockTime | None = None
    end_time: ClockTime | None = None
    session_format: SessionFormat | None = None
    is_active: bool | None = None


class PackageOut(BaseModel):
    """A package; times of day are HH:MM."""

    id: int
    tutor_id: int
    name: str
    description: str | None
    hourly_rate: float
    schedule_type: ScheduleType
    schedule_days: list[str]
    start_time: str | None
    end_time: str | None
    session_format: SessionFormat
    is_active: bool
    created_at: datetime
    updated_at: datetime


class PackagesOut(BaseModel):
    packages: list[PackageOut]


class PackageDeactivatedOut(BaseModel):
    success: bool
    message: str
    package: PackageOut


class TutorOut(BaseModel):
    """A tutor's public profile (no email, no phone); `id` is tutor_profiles.id."""

    id: int
    user_id: int
    first_name: str
    father_name: str
    grandfather_name: str | None
    full_name: str
    bio: str | None
    subjects: list[str]
    location: str | None
    languages: list[str]
    is_verified: bool
    created_at: datetime
    active_packages: int
    min_hourly_rate: float | None
