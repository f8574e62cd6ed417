"""Tutor profiles and packages, parents' children, student profile; the demo data."""

from __future__ import annotations

import psycopg2

from astegni import demo
from tests.support.factories import PASSWORD

PACKAGE_KEYS = {
    "id",
    "tutor_id",
    "name",
    "description",
    "hourly_rate",
    "schedule_type",
    "schedule_days",
    "start_time",
    "end_time",
    "session_format",
    "is_active",
}
NEW_PACKAGE = {
    "name": "Grade 12 Physics",
    "description": "Mechanics and electricity",
    "hourly_rate": 450.5,
    "schedule_type": "recurring",
    "schedule_days": ["Tuesday", "Thursday", "Tuesday"],
    "start_time": "17:00",
    "end_time": "19:00",
    "session_format": "hybrid",
}


def package_row(db, package_id):
    with db.transaction() as cur:
        cur.execute("SELECT * FROM tutor_packages WHERE id = %s", (package_id,))
        return cur.fetchone()


# ------------------------------------------------------------------ view-tutor


def test_view_tutor_shows_the_public_profile(client, factory):
    tutor = factory.tutor(packages=2)
    student = factory.student()
    response = client.get(f"/api/view-tutor/{tutor.role_ids['tutor']}", headers=student.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == tutor.role_ids["tutor"] and body["user_id"] == tutor.id
    assert body["full_name"] == tutor.full_name
    assert "bio" in body and body["active_packages"] == 2 and body["min_hourly_rate"] == 250.0
    assert "email" not in body and "password_hash" not in body


def test_view_tutor_is_public_and_needs_an_existing_tutor(client, factory):
    tutor = factory.tutor(packages=1, phone="+251911000000")
    student = factory.student()
    tutor_id = tutor.role_ids["tutor"]
    profile = client.get(f"/api/view-tutor/{tutor_id}")
    assert profile.status_code == 200 and profile.json()["full_name"] == tutor.full_name
    # A visitor learns nothing private: no email, no phone, nothing about the account.
    text = profile.text
    assert tutor.email not in text and "+251911000000" not in text
    assert not {"email", "phone", "password_hash", "roles", "active_role", "is_active"} & set(profile.json())
    packages = client.get(f"/api/view-tutor/{tutor_id}/packages")
    assert packages.status_code == 200
    assert [p["id"] for p in packages.json()["packages"]] == [tutor.extra["packages"][0]["id"]]
    # A token sent anyway, even a broken one, changes nothing.
    broken = {"Authorization": "Bearer not-a-token"}
    assert client.get(f"/api/view-tutor/{tutor_id}", headers=broken).json() == profile.json()
    # The tutor's own management of packages stays private.
    assert client.get("/api/tutor/packages").status_code == 401
    missing = client.get(f"/api/view-tutor/{tutor.role_ids['tutor'] + 1000}", headers=student.headers)
    assert missing.status_code == 404 and missing.json() == {
        "detail": "Tutor not found",
        "code": "tutor_not_found",
    }
    packages = client.get(
        f"/api/view-tutor/{tutor.role_ids['tutor'] + 1000}/packages", headers=student.headers
    )
    assert packages.status_code == 404
    empty = factory.tutor(packages=0)
    listed = client.get(f"/api/view-tutor/{empty.role_ids['tutor']}/packages")
    assert listed.status_code == 200 and listed.json() == {"packages": []}


def test_a_deactivated_tutor_is_not_shown(client, factory, db):
    tutor = factory.tutor(packages=1)
    student = factory.student()
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (tutor.id,))
    tutor_id = tutor.role_ids["tutor"]
    assert client.get(f"/api/view-tutor/{tutor_id}", headers=student.headers).status_code == 404
    assert client.get(f"/api/view-tutor/{tutor_id}/packages", headers=student.headers).status_code == 404


def test_a_tutor_whose_role_was_revoked_is_not_shown(client, factory, db):
    tutor = factory.user(["tutor", "student"])
    factory.package(tutor)
    tutor_id = tutor.role_ids["tutor"]
    assert client.get(f"/api/view-tutor/{tutor_id}").status_code == 200
    with db.transaction() as cur:  # the profile row stays; the role is gone
        cur.execute(
            "UPDATE users SET roles = ARRAY['student'], active_role = 'student' WHERE id = %s", (tutor.id,)
        )
    assert client.get(f"/api/view-tutor/{tutor_id}").status_code == 404
    assert client.get(f"/api/view-tutor/{tutor_id}/packages").status_code == 404


def test_public_packages_list_only_active_ones_in_the_contract_shape(client, factory):
    tutor = factory.tutor(packages=2)
    hidden = factory.package(tutor, name="Retired", is_active=False)
    student = factory.student()
    response = client.get(f"/api/view-tutor/{tutor.role_ids['tutor']}/packages", headers=student.headers)
    assert response.status_code == 200
    packages = response.json()["packages"]
    assert [p["id"] for p in packages] == [p["id"] for p in tutor.extra["packages"]]
    assert hidden["id"] not in {p["id"] for p in packages}
    for package in packages:
        assert set(package) >= PACKAGE_KEYS
        assert package["tutor_id"] == tutor.role_ids["tutor"] and package["is_active"] is True
        assert package["hourly_rate"] == 250.0  # money is a JSON number


# ------------------------------------------------------------------ a tutor's own packages


def test_a_tutor_creates_a_package(client, factory, db):
    tutor = factory.tutor(packages=0)
    response = client.post("/api/tutor/packages", json=NEW_PACKAGE, headers=tutor.headers)
    assert response.status_code == 201, response.text
    package = response.json()
    assert set(package) >= PACKAGE_KEYS
    assert package["tutor_id"] == tutor.role_ids["tutor"]
    assert package["hourly_rate"] == 450.5
    assert package["schedule_days"] == ["Tuesday", "Thursday"]
    assert (package["start_time"], package["end_time"]) == ("17:00", "19:00")
    assert package["is_active"] is True
    assert str(package_row(db, package["id"])["hourly_rate"]) == "450.50"
    student = factory.student()
    public = client.get(f"/api/view-tutor/{tutor.role_ids['tutor']}/packages", headers=student.headers)
    assert [p["id"] for p in public.json()["packages"]] == [package["id"]]


def test_package_fields_are_validated(client, factory, db):
    tutor = factory.tutor(packages=0)
    for change in (
        {"hourly_rate": 0},
        {"hourly_rate": -5},
        {"hourly_rate": 10.555},
        {"hourly_rate": "lots"},
        {"name": ""},
        {"name": "x" * 201},
        {"start_time": "19:00", "end_time": "17:00"},
        {"start_time": "25:00"},
        {"schedule_days": ["Funday"]},
        {"schedule_type": "sometimes"},
        {"session_format": "telepathy"},
    ):
        response = client.post("/api/tutor/packages", json=NEW_PACKAGE | change, headers=tutor.headers)
        assert response.status_code == 422, change
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM tutor_packages")
        assert cur.fetchone()["n"] == 0


def test_own_list_includes_deactivated_packages(client, factory):
    tutor = factory.tutor(packages=2)
    retired = factory.package(tutor, name="Retired", is_active=False)
    response = client.get("/api/tutor/packages", headers=tutor.headers)
    assert response.status_code == 200
    packages = {p["id"]: p for p in response.json()["packages"]}
    assert set(packages) == {p["id"] for p in tutor.extra["packages"]} | {retired["id"]}
    assert packages[retired["id"]]["is_active"] is False


def test_update_changes_only_the_given_fields(client, factory):
    tutor = factory.tutor(packages=1)
    package_id = tutor.extra["packages"][0]["id"]
    response = client.put(
        f"/api/tutor/packages/{package_id}",
        json={"hourly_rate": 300, "description": None, "schedule_days": ["Monday"]},
        headers=tutor.headers,
    )
    assert response.status_code == 200, response.text
    package = response.json()
    assert package["hourly_rate"] == 300.0 and package["description"] is None
    assert package["schedule_days"] == ["Monday"] and package["name"] == "Package 1"


def test_an_update_that_breaks_the_package_is_422_and_changes_nothing(client, factory, db):
    tutor = factory.tutor(packages=0)
    package = client.post("/api/tutor/packages", json=NEW_PACKAGE, headers=tutor.headers).json()
    for change in ({"end_time": "16:00"}, {"name": None}, {"hourly_rate": 0}):
        response = client.put(f"/api/tutor/packages/{package['id']}", json=change, headers=tutor.headers)
        assert response.status_code == 422, change
    row = package_row(db, package["id"])
    assert row["name"] == NEW_PACKAGE["name"] and str(row["end_time"]) == "19:00:00"


def test_a_package_time_with_an_offset_is_422_not_500(client, factory, db):
    tutor = factory.tutor(packages=0)
    package = client.post("/api/tutor/packages", json=NEW_PACKAGE, headers=tutor.headers).json()
    for change in (
        {"start_time": "10:00+03:00", "end_time": "12:00"},
        {"start_time": "10:00", "end_time": "12:00Z"},
        {"start_time": "10:00+03:00", "end_time": "12:00+03:00"},
    ):
        created = client.post("/api/tutor/packages", json=NEW_PACKAGE | change, headers=tutor.headers)
        assert created.status_code == 422, (change, created.text)
        updated = client.put(f"/api/tutor/packages/{package['id']}", json=change, headers=tutor.headers)
        assert updated.status_code == 422, (change, updated.text)
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM tutor_packages")
        assert cur.fetchone()["n"] == 1
    assert str(package_row(db, package["id"])["start_time"]) == "17:00:00"


def test_delete_deactivates_and_put_can_reactivate(client, factory, db):
    tutor = factory.tutor(packages=2)
    student = factory.student()
    package_id = tutor.extra["packages"][0]["id"]
    response = client.delete(f"/api/tutor/packages/{package_id}", headers=tutor.headers)
    assert response.status_code == 200
    assert response.json()["package"]["is_active"] is False
    assert package_row(db, package_id)["is_active"] is False  # still there: requests keep it
    public = client.get(f"/api/view-tutor/{tutor.role_ids['tutor']}/packages", headers=student.headers)
    assert package_id not in {p["id"] for p in public.json()["packages"]}
    again = client.put(f"/api/tutor/packages/{package_id}", json={"is_active": True}, headers=tutor.headers)
    assert again.status_code == 200 and again.json()["is_active"] is True
    public = client.get(f"/api/view-tutor/{tutor.role_ids['tutor']}/packages", headers=student.headers)
    assert package_id in {p["id"] for p in public.json()["packages"]}


def test_a_tutor_cannot_touch_another_tutors_packages(client, factory, db):
    owner, intruder = factory.tutor(packages=1), factory.tutor(packages=0)
    package_id = owner.extra["packages"][0]["id"]
    before = package_row(db, package_id)
    update = client.put(
        f"/api/tutor/packages/{package_id}", json={"hourly_rate": 1}, headers=intruder.headers
    )
    delete = client.delete(f"/api/tutor/packages/{package_id}", headers=intruder.headers)
    assert update.status_code == delete.status_code == 404
    assert update.json() == {"detail": "Package not found", "code": "package_not_found"}
    assert package_row(db, package_id) == before
    own = client.get("/api/tutor/packages", headers=intruder.headers).json()
    assert own == {"packages": []}
    missing = client.delete(f"/api/tutor/packages/{package_id + 100}", headers=owner.headers)
    assert missing.status_code == 404


def test_only_tutors_manage_packages(client, factory, db):
    tutor = factory.tutor(packages=1)
    package_id = tutor.extra["packages"][0]["id"]
    for user in (factory.student(), factory.parent(children=0)):
        assert client.get("/api/tutor/packages", headers=user.headers).status_code == 403
        assert client.post("/api/tutor/packages", json=NEW_PACKAGE, headers=user.headers).status_code == 403
        put = client.put(f"/api/tutor/packages/{package_id}", json={"hourly_rate": 1}, headers=user.headers)
        assert put.status_code == 403
        assert client.delete(f"/api/tutor/packages/{package_id}", headers=user.headers).status_code == 403
    assert package_row(db, package_id)["is_active"] is True
    assert client.post("/api/tutor/packages", json=NEW_PACKAGE).status_code == 401


# ------------------------------------------------------------------ parents and children


def test_a_parent_lists_their_children(client, factory):
    parent = factory.parent(children=2)
    factory.parent(children=1)  # someone else's child does not show
    response = client.get("/api/parent/children", headers=parent.headers)
    assert response.status_code == 200
    children = response.json()["children"]
    assert [c["id"] for c in children] == [c.role_ids["student"] for c in parent.extra["children"]]
    assert [c["user_id"] for c in children] == [c.id for c in parent.extra["children"]]
    assert children[0]["name"] == parent.extra["children"][0].full_name
    assert set(children[0]) == {"id", "user_id", "name", "grade_level"}


def test_a_parent_creates_a_linked_child_account(client, factory):
    parent = factory.parent(children=1)
    body = {
        "email": "Liya.Abebe@example.com",
        "password": PASSWORD,
        "first_name": "Liya",
        "father_name": "Abebe",
        "grade_level": "Grade 9",
    }
    response = client.post("/api/parent/children", json=body, headers=parent.headers)
    assert response.status_code == 201, response.text
    child = response.json()
    assert set(child) == {"id", "user_id", "name", "grade_level"}
    assert child["name"] == "Liya Abebe" and child["grade_level"] == "Grade 9"
    listed = client.get("/api/parent/children", headers=parent.headers).json()["children"]
    assert listed[-1] == child and len(listed) == 2
    # The child is a real student account that can log in and sees its parent.
    login = client.post("/api/login", json={"email": "liya.abebe@example.com", "password": PASSWORD})
    assert login.status_code == 200
    user = login.json()["user"]
    assert user["id"] == child["user_id"] and user["roles"] == ["student"]
    assert user["role_ids"] == {"student": child["id"]}
    token = {"Authorization": f"Bearer {login.json()['access_token']}"}
    profile = client.get("/api/student/profile", headers=token).json()
    assert profile["parents"] == [
        {"id": parent.role_ids["parent"], "user_id": parent.id, "name": parent.full_name}
    ]


def test_a_child_email_already_taken_is_409_and_nothing_is_linked(client, factory):
    parent = factory.parent(children=0)
    taken = factory.student()
    body = {"email": taken.email.upper(), "password": PASSWORD, "first_name": "A", "father_name": "B"}
    response = client.post("/api/parent/children", json=body, headers=parent.headers)
    assert response.status_code == 409
    assert client.get("/api/parent/children", headers=parent.headers).json() == {"children": []}


def test_only_parents_have_children(client, factory, db):
    body = {"email": "kid@example.com", "password": PASSWORD, "first_name": "K", "father_name": "D"}
    for user in (factory.student(), factory.tutor(packages=0)):
        assert client.get("/api/parent/children", headers=user.headers).status_code == 403
        assert client.post("/api/parent/children", json=body, headers=user.headers).status_code == 403
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM users WHERE email = 'kid@example.com'")
        assert cur.fetchone()["n"] == 0
    assert client.get("/api/parent/children").status_code == 401


def test_child_bodies_are_validated(client, factory):
    parent = factory.parent(children=0)
    good = {"email": "kid@example.com", "password": PASSWORD, "first_name": "K", "father_name": "D"}
    for change in ({"email": "nope"}, {"password": "short"}, {"first_name": ""}, {"grade_level": "x" * 51}):
        response = client.post("/api/parent/children", json=good | change, headers=parent.headers)
        assert response.status_code == 422, change


def test_a_user_with_both_roles_sees_children_whatever_the_active_role(client, factory, db):
    user = factory.user(["student", "parent"])
    child = factory.student()
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO parent_children (parent_id, student_id) VALUES (%s, %s)",
            (user.role_ids["parent"], child.role_ids["student"]),
        )
    assert client.get("/api/my-roles", headers=user.headers).json()["active_role"] == "student"
    children = client.get("/api/parent/children", headers=user.headers).json()["children"]
    assert [c["id"] for c in children] == [child.role_ids["student"]]


# ------------------------------------------------------------------ student profile


def test_student_profile(client, factory):
    student = factory.student(grade_level="Grade 10")
    response = client.get("/api/student/profile", headers=student.headers)
    assert response.status_code == 200
    profile = response.json()
    assert profile["id"] == student.role_ids["student"] and profile["user_id"] == student.id
    assert profile["grade_level"] == "Grade 10" and profile["full_name"] == student.full_name
    assert profile["parents"] == []
    tutor = factory.tutor(packages=0)
    assert client.get("/api/student/profile", headers=tutor.headers).status_code == 403
    assert client.get("/api/student/profile").status_code == 401


# ------------------------------------------------------------------ demo data


def test_demo_data_loads_once_with_the_fixed_logins(client, db_url, settings):
    conn = psycopg2.connect(db_url)
    try:
        assert demo.load_demo_data(conn, settings) is True
        assert demo.load_demo_data(conn, settings) is False  # idempotent
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM users")
            assert cur.fetchone()[0] == len(demo.LOGINS) == 8
            cur.execute(
                "SELECT p.id, p.tutor_id, p.is_active FROM tutor_packages p"
                " JOIN tutor_profiles t ON t.id = p.tutor_id JOIN users u ON u.id = t.user_id"
                " WHERE u.email = 'tutor1@astegni.demo' ORDER BY p.id"
            )
            assert cur.fetchall() == [(4, 1, True), (5, 1, True), (6, 1, True)]
        banner = demo.demo_banner(conn, "http://127.0.0.1:8000")
    finally:
        conn.close()
    assert "http://127.0.0.1:8000/view-tutor.html?id=2" in banner
    tokens = {}
    for _role, email, password in demo.LOGINS:
        response = client.post("/api/login", json={"email": email, "password": password})
        assert response.status_code == 200, email
        assert email in banner and password in banner
        tokens[email] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    for number in (1, 2, 3):
        packages = client.get(f"/api/view-tutor/{number}/packages", headers=tokens["student@astegni.demo"])
        assert len(packages.json()["packages"]) == 3
        assert all(p["hourly_rate"] > 0 for p in packages.json()["packages"])
    children = client.get("/api/parent/children", headers=tokens["parent@astegni.demo"]).json()["children"]
    child_ids = {client.get("/api/me", headers=tokens[f"child{n}@astegni.demo"]).json()["id"] for n in (1, 2)}
    assert {c["user_id"] for c in children} == child_ids
    abebe = client.get("/api/my-roles", headers=tokens["abebe@astegni.demo"]).json()
    assert sorted(abebe["user_roles"]) == ["parent", "student"]
    switched = client.post("/api/switch-role", json={"role": "parent"}, headers=tokens["abebe@astegni.demo"])
    assert switched.status_code == 200
    abebe_children = client.get("/api/parent/children", headers=tokens["abebe@astegni.demo"]).json()
    assert {c["id"] for c in abebe_children["children"]} == {c["id"] for c in children}
