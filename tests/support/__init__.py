"""What the tests share: settings and live servers (live), polling with a deadline (polling),
WebSocket clients (ws), users and packages (factories), chat and session-request helpers (chat,
requests). Fixtures stay in tests/conftest.py and only wire these together."""
