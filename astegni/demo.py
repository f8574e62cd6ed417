"""Demo data for a first `make run`: tutors with packages, a student, a family, a two-role user.

Loaded only into a database without users (LOAD_DEMO_DATA=true, which `python app.py` sets in
embedded mode). Other scripts log in with these accounts, so the logins are fixed. On a new
database tutor1, tutor2 and tutor3 are tutor_profiles.id 1, 2 and 3, and tutor2's packages are
made first, so that tutor 2 with package 1 (the example body of the API's documentation) and the
QA script's defaults (tutor 2, packages 1 and 2) work as written.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Any

import psycopg2.extras

from astegni.accounts.service import queries as account_queries
from astegni.core.queries import Queries, execute, fetch_one
from astegni.core.security import hash_password
from astegni.core.settings import Settings

queries = Queries("demo.sql")
_DEMO_LOCK_KEY = 7_210_332

STUDENT_PASSWORD = "StudentDemo1!"
PARENT_PASSWORD = "ParentDemo1!"
CHILD_PASSWORD = "ChildDemo1!"
TUTOR_PASSWORD = "TutorDemo1!"
ABEBE_PASSWORD = "AbebeDemo1!"


def _package(name: str, description: str, rate: str, days: list[str], hours: tuple | None, fmt: str) -> dict:
    return {
        "name": name,
        "description": description,
        "hourly_rate": Decimal(rate),
        "schedule_type": "recurring" if days else "flexible",
        "schedule_days": days,
        "start_time": time(*hours[0]) if hours else None,
        "end_time": time(*hours[1]) if hours else None,
        "session_format": fmt,
        "is_active": True,
    }


TUTORS: list[dict[str, Any]] = [
    {
        "email": "tutor1@astegni.demo",
        "first_name": "Selamawit",
        "father_name": "Bekele",
        "grandfather_name": "Tadesse",
        "phone": "+251911234501",
        "bio": (
            "Mathematics and physics teacher with nine years at Bole Preparatory School. I help "
            "Grade 7-12 students master the national curriculum and prepare for the Ministry "
            "exams and the university entrance exam, with weekly practice papers and worked "
            "solutions in Amharic or English."
        ),
        "subjects": ["Mathematics", "Physics"],
        "location": "Addis Ababa, Bole",
        "languages": ["Amharic", "English"],
        "packages": [
            _package(
                "Grade 10 Mathematics - Ministry Exam Preparation",
                "Algebra, geometry and statistics of the Grade 10 curriculum, with a past Ministry "
                "exam paper worked through every week.",
                "350.00",
                ["Monday", "Wednesday", "Friday"],
                ((16, 0), (18, 0)),
                "hybrid",
            ),
            _package(
                "Grade 12 Physics - University Entrance Exam Intensive",
                "Mechanics, electricity and magnetism, waves and modern physics; a timed mock "
                "exam every Saturday with a review of each answer.",
                "450.00",
                ["Tuesday", "Thursday", "Saturday"],
                ((17, 0), (19, 0)),
                "online",
            ),
            _package(
                "Grade 7-8 Mathematics Foundations",
                "Fractions, ratios, linear equations and geometry for the Grade 8 regional exam, "
                "in small groups near Edna Mall.",
                "250.00",
                ["Saturday", "Sunday"],
                ((9, 0), (11, 0)),
                "in_person",
            ),
        ],
    },
    {
        "email": "tutor2@astegni.demo",
        "first_name": "Dawit",
        "father_name": "Haile",
        "grandfather_name": "Gebremariam",
        "phone": "+251912345602",
        "bio": (
            "English language teacher (BA in English, Addis Ababa University; CELTA) and "
            "Amharic literacy tutor. Twelve years of classroom teaching; my IELTS students "
            "reach band 7 on average."
        ),
        "subjects": ["English", "Amharic", "IELTS"],
        "location": "Addis Ababa, Piassa",
        "languages": ["Amharic", "English", "Afaan Oromo"],
        "packages": [
            _package(
                "IELTS Academic Preparation",
                "All four skills with timed practice tests, essay feedback within 48 hours and "
                "speaking mock interviews.",
                "600.00",
                ["Monday", "Wednesday"],
                ((18, 0), (20, 0)),
                "online",
            ),
            _package(
                "Spoken English for Grades 5-8",
                "Conversation, pronunciation and vocabulary through games, stories and short presentations.",
                "300.00",
                ["Saturday"],
                ((10, 0), (12, 0)),
                "hybrid",
            ),
            _package(
                "Amharic Reading and Writing (Grades 1-4)",
                "The fidel (ፊደል) step by step, reading short stories aloud and neat handwriting.",
                "200.00",
                ["Tuesday", "Thursday"],
                ((15, 0), (16, 30)),
                "in_person",
            ),
        ],
    },
    {
        "email": "tutor3@astegni.demo",
        "first_name": "Hanna",
        "father_name": "Tesfaye",
        "grandfather_name": "Wolde",
        "phone": "+251913456703",
        "bio": (
            "Pharmacist and chemistry tutor from Hawassa, teaching online across Ethiopia. I make "
            "chemistry and biology practical with home experiments, and I teach teenagers their "
            "first programs in Python."
        ),
        "subjects": ["Chemistry", "Biology", "Computer Science"],
        "location": "Hawassa (online)",
        "languages": ["Amharic", "English"],
        "packages": [
            _package(
                "Grade 11 Chemistry",
                "Atomic structure, chemical bonding, stoichiometry and reaction rates, with a "
                "worksheet after every session.",
                "400.00",
                ["Monday", "Thursday"],
                ((17, 0), (19, 0)),
                "online",
            ),
            _package(
                "Grade 12 Biology - University Entrance Exam Revision",
                "Genetics, human physiology, ecology and evolution, revised with past entrance "
                "exam questions.",
                "420.00",
                ["Saturday", "Sunday"],
                ((14, 0), (16, 0)),
                "hybrid",
            ),
            _package(
                "Introduction to Programming with Python (Grades 9-12)",
                "Variables, loops, functions and a small game of your own; times arranged with each student.",
                "500.00",
                [],
                None,
                "online",
            ),
        ],
    },
]

STUDENT = {
    "email": "student@astegni.demo",
    "first_name": "Meron",
    "father_name": "Alemu",
    "grandfather_name": "Desta",
    "phone": "+251914567804",
    "grade_level": "Grade 10",
    "school": "Menelik II Preparatory School",
    "bio": "Grade 10 student preparing for the Ministry exam; strongest in biology, working on maths.",
}
PARENT = {
    "email": "parent@astegni.demo",
    "first_name": "Tigist",
    "father_name": "Worku",
    "grandfather_name": "Assefa",
    "phone": "+251915678905",
    "bio": "Mother of two, looking for patient tutors for maths and English.",
}
CHILDREN = [
    {
        "email": "child1@astegni.demo",
        "first_name": "Nahom",
        "father_name": "Abebe",
        "grandfather_name": "Kebede",
        "grade_level": "Grade 6",
        "school": "Lideta Catholic Cathedral School",
        "bio": "Loves football and stories; needs help with fractions.",
    },
    {
        "email": "child2@astegni.demo",
        "first_name": "Liya",
        "father_name": "Abebe",
        "grandfather_name": "Kebede",
        "grade_level": "Grade 9",
        "school": "Nazareth School",
        "bio": "Wants to study medicine; working towards top marks in chemistry.",
    },
]
# The children's father: a parent who also learns (IELTS), to show switching between roles.
ABEBE = {
    "email": "abebe@astegni.demo",
    "first_name": "Abebe",
    "father_name": "Kebede",
    "grandfather_name": "Mulugeta",
    "phone": "+251916789006",
    "grade_level": "Adult learner",
    "school": None,
    "bio": "Civil engineer preparing for the IELTS exam for a scholarship abroad.",
}

# Whose packages are made first: tutor2's (packages 1-3), then tutor1's (4-6), tutor3's (7-9).
PACKAGE_ORDER = (1, 0, 2)
# The tutor the start-up banner links to: the one that owns package 1.
BANNER_TUTOR = TUTORS[PACKAGE_ORDER[0]]

LOGINS = [
    ("student", STUDENT["email"], STUDENT_PASSWORD),
    ("parent", PARENT["email"], PARENT_PASSWORD),
    *[("child", child["email"], CHILD_PASSWORD) for child in CHILDREN],
    *[("tutor", tutor["email"], TUTOR_PASSWORD) for tutor in TUTORS],
    ("student+parent", ABEBE["email"], ABEBE_PASSWORD),
]


def _user(cur, settings: Settings, person: dict[str, Any], password: str, roles: list[str]) -> dict:
    fields = {
        "email": person["email"],
        "password_hash": hash_password(settings, password),
        "first_name": person["first_name"],
        "father_name": person["father_name"],
        "grandfather_name": person.get("grandfather_name"),
        "phone": person.get("phone"),
        "roles": roles,
        "grade_level": person.get("grade_level"),
        "locale": person.get("locale"),
    }
    return fetch_one(cur, account_queries.create_user, fields)


def _describe_student(cur, row: dict, person: dict[str, Any]) -> None:
    execute(
        cur,
        queries.describe_student,
        {
            "student_id": row["student_id"],
            "grade_level": person["grade_level"],
            "school": person.get("school"),
            "bio": person.get("bio"),
        },
    )


def _insert_all(cur, settings: Settings) -> None:
    from astegni.tutors.service import queries as profile_queries  # the package INSERT of the API

    tutor_ids = []
    for tutor in TUTORS:
        row = _user(cur, settings, tutor, TUTOR_PASSWORD, ["tutor"])
        execute(cur, queries.describe_tutor, {"tutor_id": row["tutor_id"]} | tutor)
        tutor_ids.append(row["tutor_id"])
    for index in PACKAGE_ORDER:
        for package in TUTORS[index]["packages"]:
            fetch_one(cur, profile_queries.create_package, package | {"tutor_id": tutor_ids[index]})

    student = _user(cur, settings, STUDENT, STUDENT_PASSWORD, ["student"])
    _describe_student(cur, student, STUDENT)

    parent = _user(cur, settings, PARENT, PARENT_PASSWORD, ["parent"])
    execute(cur, queries.describe_parent, {"parent_id": parent["parent_id"], "bio": PARENT["bio"]})
    abebe = _user(cur, settings, ABEBE, ABEBE_PASSWORD, ["student", "parent"])
    _describe_student(cur, abebe, ABEBE)
    for child in CHILDREN:
        row = _user(cur, settings, child, CHILD_PASSWORD, ["student"])
        _describe_student(cur, row, child)
        for guardian in (parent, abebe):
            execute(
                cur, queries.link_child, {"parent_id": guardian["parent_id"], "student_id": row["student_id"]}
            )


def load_demo_data(conn, settings: Settings) -> bool:
    """Insert the demo accounts into a database without users; True when it did."""
    cursor_factory = psycopg2.extras.RealDictCursor
    with conn, conn.cursor(cursor_factory=cursor_factory) as cur:
        if fetch_one(cur, queries.any_user)["present"]:
            return False
    with conn, conn.cursor(cursor_factory=cursor_factory) as cur:
        # Two processes starting on one new database: the second waits, then finds the users.
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_DEMO_LOCK_KEY,))
        if fetch_one(cur, queries.any_user)["present"]:
            return False
        _insert_all(cur, settings)
    return True


def demo_banner(conn, base_url: str) -> str:
    """The demo logins and a page to start from, for the start-up output."""
    with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        row = fetch_one(cur, queries.demo_tutor_id, {"email": BANNER_TUTOR["email"]})
    lines = ["", "Astegni demo logins:"]
    lines += [f"  {role:<15} {email:<24} {password}" for role, email, password in LOGINS]
    if row is not None:
        lines.append(f"Open {base_url}/view-tutor.html?id={row['id']} (API docs: {base_url}/docs)")
    return "\n".join([*lines, ""])
