"""A chat client that keeps a WebSocket open through the proxy, as the inbox page does: on any
close it reconnects, and once subscribed again catches up with after_id on every conversation.

It records what it was shown, so that a run can check that every message reached it exactly
once: each message id is counted once (an event and the catch-up may both carry it), but the
same event twice on one socket is a duplicate and reported.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class Watcher(threading.Thread):
    def __init__(self, base_url: str, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base_url, self.token, self.stop = base_url, token, stop
        self.ws_url = base_url.replace("http://", "ws://", 1) + "/api/chat/ws"
        # Closed by whoever runs the watcher: it may catch up once more after the thread ends.
        self.http = httpx.Client(base_url=base_url, timeout=10, headers={"Authorization": f"Bearer {token}"})
        self.last_id: dict[int, int] = {}  # conversation -> newest message id shown
        self.shown: set[int] = set()
        self.duplicates: list[int] = []  # the same message.created twice on one socket
        self.closes: list[int | None] = []  # close code of each lost socket
        self.problems: list[str] = []
        self.socket: ClientConnection | None = None

    def open(self) -> None:
        """Connect and wait for "ready"; retried until it works or the run stops."""
        while not self.stop.is_set():
            try:
                socket = connect(self.ws_url, open_timeout=5, close_timeout=1)
                socket.send(json.dumps({"type": "auth", "token": self.token}))
                frame = json.loads(socket.recv(timeout=5))
                if frame.get("type") == "ready":
                    self.socket = socket
                    return
                socket.close()
            except (OSError, TimeoutError, ConnectionClosed):
                pass
            time.sleep(0.2)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if self.socket is None:
                    self.open()
                    if self.socket is None:
                        return
                self.catch_up()
                self.listen()
        except Exception as exc:  # reported by the run, not lost with the thread
            self.problems.append(f"watcher failed: {exc!r}")
        finally:
            if self.socket is not None:
                self.socket.close()

    def listen(self) -> None:
        """Events on the current socket until it closes (then it is dropped) or the run stops."""
        seen_here: set[int] = set()
        socket = self.socket
        assert socket is not None
        while not self.stop.is_set():
            try:
                frame = json.loads(socket.recv(timeout=0.5))
            except TimeoutError:
                continue
            except ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
                self.socket = None
                return
            if frame.get("type") != "message.created":
                continue
            message = frame["data"]["message"]
            if message["id"] in seen_here:
                self.duplicates.append(message["id"])
            seen_here.add(message["id"])
            self.show(frame["data"]["conversation_id"], message["id"])

    def catch_up(self) -> None:
        """Everything after the newest shown message of each conversation, over REST, retried
        while an instance is down (a 502 or 503 is the proxy or the app saying so)."""
        for conversation_id in self.conversations():
            has_more = True
            while has_more:
                after = self.last_id.get(conversation_id, 0)
                page = self.get(f"/api/chat/messages/{conversation_id}", {"after_id": after, "limit": 100})
                for message in page["messages"]:
                    self.show(conversation_id, message["id"])
                has_more = page["has_more"]

    def conversations(self) -> list[int]:
        ids, before = [], None
        while True:
            params = {"limit": 50} | ({"before": before} if before else {})
            page = self.get("/api/chat/conversations", params)
            ids += [conversation["id"] for conversation in page["conversations"]]
            before = page.get("next_cursor")
            if not before:
                return ids

    def get(self, path: str, params: dict) -> dict:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = self.http.get(path, params=params)
                if response.status_code == 200:
                    return response.json()
                if response.status_code not in (502, 503):
                    raise RuntimeError(f"GET {path} -> {response.status_code} {response.text[:200]}")
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"GET {path}: no answer in 30 s")
            time.sleep(0.2)

    def show(self, conversation_id: int, message_id: int) -> None:
        self.shown.add(message_id)
        self.last_id[conversation_id] = max(self.last_id.get(conversation_id, 0), message_id)
