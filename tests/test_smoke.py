def test_register_and_me(client, factory):
    user = factory.student()
    response = client.get("/api/me", headers=user.headers)
    assert response.status_code == 200
    assert response.json()["id"] == user.id
    assert response.json()["role_ids"] == {"student": user.role_ids["student"]}
