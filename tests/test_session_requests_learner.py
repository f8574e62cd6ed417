"""my-requests from both sides: what the caller sent and what was sent for them as the learner
(a child sees what a parent booked), the tutor filter, paging across both kinds, and who may
cancel."""

from __future__ import annotations

from typing import Any

from tests.support.requests import URL, request_body, scalar


def create(client, user, tutor, package: int = 0, **overrides: Any) -> int:
    response = client.post(URL, json=request_body(tutor, package, **overrides), headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["request_id"]


def listed(client, user, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"{URL}/my-requests{query}", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


def every_page(client, user, url: str) -> list[int]:
    seen: list[int] = []
    while url:
        response = client.get(url, headers=user.headers)
        assert response.status_code == 200, response.text
        seen += [r["id"] for r in response.json()]
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    return seen


def test_a_child_sees_what_the_parent_booked_and_their_own(client, factory):
    tutor = factory.tutor(packages=2)
    parent = factory.parent(children=2, first_name="Tigist", father_name="Worku")
    child, sibling = parent.extra["children"]
    booked = create(client, parent, tutor, 0, requested_to_id=child.role_ids["student"])
    create(client, parent, tutor, 0, requested_to_id=sibling.role_ids["student"])
    own = create(client, child, tutor, 1)

    rows = listed(client, child)
    assert [r["id"] for r in rows] == [own, booked]
    by_parent = rows[1]
    assert by_parent["requester"] == {"user_id": parent.id, "name": "Tigist Worku"}
    assert by_parent["learner"] == {
        "student_id": child.role_ids["student"],
        "user_id": child.id,
        "name": child.full_name,
    }
    assert by_parent["package_price"] == 250.0
    assert by_parent["requester_type"] == "parent"
    assert rows[0]["requester"] == {"user_id": child.id, "name": child.full_name}
    assert rows[0]["learner"]["user_id"] == child.id
    # The parent sees both bookings they made, one per child, and not the child's own request.
    assert [r["learner"]["user_id"] for r in listed(client, parent)] == [sibling.id, child.id]


def test_the_tutor_filter_keeps_one_tutors_requests_of_both_kinds(client, factory):
    tutor, other = factory.tutor(packages=2), factory.tutor(packages=1)
    parent = factory.parent(children=1)
    [child] = parent.extra["children"]
    booked = create(client, parent, tutor, 0, requested_to_id=child.role_ids["student"])
    own = create(client, child, tutor, 1)
    elsewhere = create(client, child, other, 0)
    assert [r["id"] for r in listed(client, child, f"?tutor_id={tutor.role_ids['tutor']}")] == [own, booked]
    assert [r["id"] for r in listed(client, child, f"?tutor_id={other.role_ids['tutor']}")] == [elsewhere]
    assert listed(client, child, "?tutor_id=2147483647") == []
    assert client.get(f"{URL}/my-requests?tutor_id=0", headers=child.headers).status_code == 422
    pending_here = listed(client, child, f"?tutor_id={tutor.role_ids['tutor']}&status=pending")
    assert [r["id"] for r in pending_here] == [own, booked]


def test_pages_interleave_both_kinds_newest_first(client, factory):
    tutor = factory.tutor(packages=6)
    parent = factory.parent(children=1)
    [child] = parent.extra["children"]
    made = []
    for i in range(6):
        if i % 2:
            made.append(create(client, child, tutor, i))
        else:
            made.append(create(client, parent, tutor, i, requested_to_id=child.role_ids["student"]))
    seen = every_page(client, child, f"{URL}/my-requests?limit=2")
    assert seen == sorted(made, reverse=True)
    # A page boundary inside a run of one kind: three and three.
    assert every_page(client, child, f"{URL}/my-requests?limit=3") == sorted(made, reverse=True)
    assert every_page(client, child, f"{URL}/my-requests?limit=5") == sorted(made, reverse=True)


def test_the_learner_may_not_cancel_what_the_parent_sent(client, factory, db):
    tutor = factory.tutor(packages=1)
    parent = factory.parent(children=1)
    [child] = parent.extra["children"]
    booked = create(client, parent, tutor, 0, requested_to_id=child.role_ids["student"])
    response = client.post(f"{URL}/{booked}/cancel", headers=child.headers)
    assert response.status_code == 403
    assert response.json()["code"] == "not_requester"
    assert scalar(db, "SELECT status FROM requested_sessions WHERE id = %s", booked) == "pending"
    assert client.post(f"{URL}/{booked}/cancel", headers=parent.headers).status_code == 200


def test_a_stranger_sees_nothing_of_others_requests(client, factory, db):
    tutor = factory.tutor(packages=1)
    parent = factory.parent(children=1)
    [child] = parent.extra["children"]
    booked = create(client, parent, tutor, 0, requested_to_id=child.role_ids["student"])
    stranger = factory.student()
    other_parent = factory.parent(children=0)
    for user in (stranger, other_parent):
        assert listed(client, user) == []
        assert listed(client, user, f"?tutor_id={tutor.role_ids['tutor']}") == []
        response = client.post(f"{URL}/{booked}/cancel", headers=user.headers)
        assert (response.status_code, response.json()["code"]) == (404, "request_not_found")
    # The tutor sees it among their incoming requests, not in my-requests.
    assert listed(client, tutor) == []
    assert scalar(db, "SELECT status FROM requested_sessions WHERE id = %s", booked) == "pending"
