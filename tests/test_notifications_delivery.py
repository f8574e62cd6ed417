"""The outbox's delivery guarantees against a real SMTP server (aiosmtpd): a mail server that is
down loses nothing, failures retry and end as 'dead' for the operator, a crashed sender's rows
are sent by another, several server processes send each email exactly once, and without
SMTP_URL emails become .eml files."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from astegni.notifications import outbox
from astegni.notifications.sender import send_round
from tests.support.live import PROJECT_DIR, app_client, live_servers, make_settings
from tests.support.mail import MailServer, text_of
from tests.support.polling import eventually
from tests.support.remote import register, sql, tutor_with_packages
from tests.support.requests import URL, request_body, rows, scalar


def email_settings(db_url: str, mail: MailServer | None, **overrides: Any):
    values = {
        "smtp_url": mail.url if mail else None,
        "email_poll_seconds": 0.05,
        "email_retry_base_seconds": 0.05,
        "email_retry_max_seconds": 0.2,
        "email_max_attempts": 3,
    }
    return make_settings(db_url, **(values | overrides))


@pytest.fixture
def settings(db_url: str, mail: MailServer, request: pytest.FixtureRequest):
    return email_settings(db_url, mail, **getattr(request, "param", {}))


def create(client, user, tutor, package: int = 0) -> int:
    response = client.post(URL, json=request_body(tutor, package), headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["request_id"]


def statuses(db) -> list[str]:
    return [r["status"] for r in rows(db, "SELECT status FROM email_outbox ORDER BY id")]


def settled(db) -> bool:
    return scalar(db, "SELECT count(*) FROM email_outbox WHERE status IN ('pending', 'sending')") == 0


def message_ids(messages) -> list[str]:
    return sorted(m["Message-ID"] for m in messages)


# ---------------------------------------------------------------------------- outage and retries


@pytest.mark.parametrize("settings", [{"email_max_attempts": 1000}], indirect=True)
def test_a_mail_server_that_is_down_delays_the_mail_and_loses_none(client, factory, db, mail):
    mail.stop()
    student, tutor = factory.student(), factory.tutor(packages=3)
    for package in range(3):
        create(client, student, tutor, package)
    # Every email was tried, failed, and waits for its next attempt.
    eventually(
        lambda: scalar(db, "SELECT count(*) FROM email_outbox WHERE attempts >= 2 AND last_error IS NOT NULL")
        == 3,
        what="failed attempts",
    )
    assert set(statuses(db)) <= {"pending", "sending"}

    mail.start()
    mail.wait_for(lambda ms: len(ms) >= 3)
    eventually(lambda: settled(db), what="outbox settled")
    assert statuses(db) == ["sent"] * 3
    assert len(mail.messages) == 3 and len(set(message_ids(mail.messages))) == 3


def test_an_email_the_server_keeps_deferring_ends_dead_and_the_operator_sees_and_revives_it(
    client, factory, db, db_url, mail
):
    mail.collector.refuse = "451 4.3.0 Try again later"
    student, tutor = factory.student(), factory.tutor()
    create(client, student, tutor)
    eventually(lambda: statuses(db) == ["dead"], what="dead row")
    [row] = rows(db, "SELECT * FROM email_outbox")
    assert row["attempts"] == 3 and "451" in row["last_error"]
    assert mail.messages == []

    listed = run_cli(db_url, "--dead")
    [dead] = [json.loads(line) for line in listed.splitlines()]
    assert dead["id"] == row["id"] and dead["email"] == tutor.email and "451" in dead["last_error"]

    mail.collector.refuse = None
    assert "1 row(s) pending again" in run_cli(db_url, "--retry-dead", str(row["id"]))
    [message] = mail.wait_for(lambda ms: len(ms) == 1)
    assert message["To"].addresses[0].addr_spec == tutor.email
    eventually(lambda: statuses(db) == ["sent"], what="sent")


def test_a_permanent_refusal_is_dead_at_once(client, factory, db, mail):
    mail.collector.refuse = "550 5.1.1 Mailbox unavailable"
    student, tutor = factory.student(), factory.tutor()
    create(client, student, tutor)
    eventually(lambda: statuses(db) == ["dead"], what="dead row")
    [row] = rows(db, "SELECT attempts, last_error FROM email_outbox")
    assert row["attempts"] == 1 and "550" in row["last_error"]


def run_cli(db_url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "astegni.notifications.outbox", *args],
        cwd=PROJECT_DIR,
        env=os.environ | {"DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# ---------------------------------------------------------------------------- crashes, processes


# A poll this long: the app's own sender never runs, the test drives the rounds.
@pytest.mark.parametrize("settings", [{"email_poll_seconds": 3600}], indirect=True)
def test_rows_a_crashed_sender_had_claimed_are_sent_once_its_lease_runs_out(
    client, factory, db, db_url, mail, settings
):
    student, tutor = factory.student(), factory.tutor()
    create(client, student, tutor)
    crashed = email_settings(db_url, mail, email_lease_seconds=0.5)
    _token, claimed = db.call(outbox.claim, crashed)  # ... and the process dies before sending
    assert len(claimed) == 1
    assert asyncio.run(send_round(db, settings)) == 0  # leased: nobody else takes it yet

    eventually(lambda: asyncio.run(send_round(db, settings)) == 1, what="the lease to run out")
    [message] = mail.wait_for(lambda ms: len(ms) == 1)
    assert text_of(message).startswith("Hello")
    [row] = rows(db, "SELECT status, attempts FROM email_outbox")
    assert row == {"status": "sent", "attempts": 2}


@pytest.mark.slow
def test_three_server_processes_send_each_email_exactly_once(db_url, mail):
    env = {
        "SMTP_URL": mail.url,
        "EMAIL_POLL_SECONDS": "0.02",
        "EMAIL_BATCH_SIZE": "2",
        "PUBLIC_BASE_URL": "https://astegni.example",
    }
    with live_servers(db_url, env | {"WORKERS": "2"}, env) as (a, b):
        tutor, packages = tutor_with_packages(a, 12)
        student = register(b, "student")
        for i, package in enumerate(packages):
            server = (a, b)[i % 2]
            body = {
                "tutor_id": tutor["role_ids"]["tutor"],
                "package_id": package,
                "schedule_type": "recurring",
                "days": ["Monday"],
                "start_time": "10:00",
                "end_time": "11:00",
            }
            response = httpx.post(f"{server.url}{URL}", json=body, headers=student["headers"], timeout=20)
            assert response.status_code == 200, response.text
        mail.wait_for(lambda ms: len(ms) >= len(packages), timeout=30)
        eventually(lambda: _all_sent(db_url, len(packages)), timeout=30, what="every row sent")
    assert len(mail.messages) == len(packages)
    assert len(set(message_ids(mail.messages))) == len(packages)
    subjects = sorted(m["Subject"] for m in mail.messages)
    assert subjects == sorted(f"New session request: Package {i}" for i in range(len(packages)))


def _all_sent(db_url: str, count: int) -> bool:
    return sql(db_url, "SELECT count(*) FROM email_outbox WHERE status = 'sent'")[0][0] == count


# ---------------------------------------------------------------------------- no SMTP_URL


def test_without_smtp_url_each_email_is_an_eml_file(db_url, tmp_path: Path):
    from astegni.core.database import Database
    from tests.support.factories import Factory

    settings = email_settings(db_url, None, email_outbox_dir=tmp_path / "outbox")
    database = Database(db_url, pool_size=2)
    try:
        with app_client(settings) as client:
            factory = Factory(client, database)
            student, tutor = factory.student(), factory.tutor()
            create(client, student, tutor)
            [path] = eventually(lambda: list((tmp_path / "outbox").glob("*.eml")), what=".eml file")
    finally:
        database.close()
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == tutor.email
    assert message["Subject"] == "New session request: Package 1"
    assert path.name == message["Message-ID"].strip("<>").split("@")[0] + ".eml"


# A poll this long: the app's own sender never runs.
@pytest.mark.parametrize("settings", [{"email_poll_seconds": 3600}], indirect=True)
def test_the_sweep_purges_rows_long_sent_and_keeps_dead_ones(client, factory, db):
    from astegni.core import housekeeping as expiry

    student, tutor = factory.student(), factory.tutor(packages=3)
    for package in range(3):
        create(client, student, tutor, package)
    with db.transaction() as cur:
        cur.execute(
            "UPDATE email_outbox SET created_at = now() - interval '31 days',"
            " status = (ARRAY['sent', 'skipped', 'dead'])[id - (SELECT min(id) - 1 FROM email_outbox)]"
        )
    expiry.sweep(db)
    assert statuses(db) == ["dead"]
