"""Benchmark of the chat: REST sends per second, delivery latency to WebSockets on another process,
and conversation-list latency with 10k and with 1M messages in the database.

    make bench-chat      # or: .venv/bin/python -m bench.chat.run [--quick]

1. Creates two databases (astegni_bench_chat_*) on BENCH_DATABASE_URL's server (else
   TEST_DATABASE_URL's, else the embedded one), seeded alike with generate_series: the list user
   with 50 conversations, 200 sender/receiver pairs, 1,750 filler conversations; then 10k
   messages in one and 1M in the other, spread over every conversation, everyone having read all
   but the last 5 messages of each conversation. VACUUM ANALYZE.
2. Starts three server processes (`python app.py`, uvloop/httptools, WORKERS=1 each): A (REST) and
   B (WebSockets) on the 10k database, C on the 1M one.
3. Conversation list: GET /api/chat/conversations?limit=20 of the list user, sequentially,
   alternating between A and C in batches of 25 (a noisy neighbour slows both alike): p50/p99
   over HTTP, and of the list query alone (EXECUTE of the prepared statement). Then the same at
   1M for a user who never read anything (every unread message of the page is counted).
4. Sends: wrk POSTs /api/chat/messages to A (32 connections, each request from a sender to its
   receiver) while 200 sockets are open on B; every created message must arrive on B (messages/s
   over REST). Then an open loop from here at a fixed rate (100/s; latency not inflated by client
   queueing): delivery latency = from the start of the POST to A until the event arrives on the
   receiver's socket on B (p50/p99).
5. Prints the figures and drops its databases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import httpx
import psycopg2
from websockets.asyncio.client import connect

from astegni.core.schema import apply_schema
from astegni.core.security import access_token
from astegni.core.settings import Settings
from bench.chat.latency import SECRET, Server, list_latency, ms, percentile, query_latency
from tests import pg
from tests.support.live import free_port

HERE = Path(__file__).resolve().parent
LIST_USER = 1
LIST_CONVERSATIONS = 50
PAIRS = 200
FILLER_CONVERSATIONS = 1750
CONVERSATIONS = LIST_CONVERSATIONS + PAIRS + FILLER_CONVERSATIONS
USERS = 1 + LIST_CONVERSATIONS + 2 * PAIRS + 2 * FILLER_CONVERSATIONS
UNREAD_PER_CONVERSATION = 5

# Users: 1 = the list user; 2..51 = their partners; 52..251 = senders; 252..451 = receivers;
# 452..3951 = filler users (two per filler conversation). Conversations: 1..50 the list user's,
# 51..250 sender i <-> receiver i, 251..2000 filler.
SEED_USERS = """
INSERT INTO users (id, email, password_hash, first_name, father_name, roles, active_role)
SELECT g, 'u' || g || '@bench.astegni.test', 'x', 'User', 'Number ' || g, '{student}', 'student'
  FROM generate_series(1, %(users)s) g;
SELECT setval(pg_get_serial_sequence('users', 'id'), %(users)s);
INSERT INTO conversations (id, type, created_by_user_id, direct_user_low, direct_user_high, created_at)
SELECT c, 'direct', a, a, b, now() - interval '30 days'
  FROM (SELECT c,
               CASE WHEN c <= 50 THEN 1 WHEN c <= 250 THEN c + 1 ELSE 452 + 2 * (c - 251) END AS a,
               CASE WHEN c <= 50 THEN c + 1 WHEN c <= 250 THEN c + 201 ELSE 453 + 2 * (c - 251) END AS b
          FROM generate_series(1, %(conversations)s) c) pairs;
SELECT setval(pg_get_serial_sequence('conversations', 'id'), %(conversations)s);
INSERT INTO conversation_participants (conversation_id, user_id)
SELECT id, direct_user_low FROM conversations
UNION ALL
SELECT id, direct_user_high FROM conversations;
"""

# Messages n+1..n+count, spread round-robin over every conversation, alternating senders, one
# second apart and all older than now (so the live sends of the run are the newest).
SEED_MESSAGES = """
INSERT INTO chat_messages (conversation_id, sender_user_id, message_type, content, created_at)
SELECT c.id, CASE WHEN (g / %(conversations)s) %% 2 = 0 THEN c.direct_user_low ELSE c.direct_user_high END,
       'text', 'Seeded message number ' || g, now() - interval '1 day' + g * interval '50 ms'
  FROM generate_series(%(first)s, %(last)s) g
  JOIN conversations c ON c.id = 1 + g %% %(conversations)s;
UPDATE conversations c SET last_message_at = m.at
  FROM (SELECT conversation_id, max(created_at) AS at FROM chat_messages GROUP BY conversation_id) m
 WHERE m.conversation_id = c.id;
"""

# The list user (and everyone else) has read all but the last few messages of each conversation.
SET_MARKERS = """
UPDATE conversation_participants p
   SET last_read_message_id = (SELECT m.id FROM chat_messages m
                                WHERE m.conversation_id = p.conversation_id
                                ORDER BY m.id DESC OFFSET %(unread)s LIMIT 1)
 WHERE p.conversation_id <= %(list_conversations)s;
"""


# ---------------------------------------------------------------------------- database


def sql(url: str, statement: str, params: dict | None = None, autocommit: bool = False) -> None:
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = autocommit
        with conn.cursor() as cur:
            cur.execute(statement, params)
        if not autocommit:
            conn.commit()
    finally:
        conn.close()


def seed_messages(url: str, first: int, last: int, conversations: int) -> float:
    started = time.perf_counter()
    sql(url, SEED_MESSAGES, {"first": first, "last": last, "conversations": conversations})
    sql(url, "VACUUM ANALYZE chat_messages, conversations, conversation_participants", autocommit=True)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------- servers


async def messaging(writer: Server, reader: Server, tokens: dict[int, str], args: argparse.Namespace) -> dict:
    """Open one socket per receiver on `reader`; drive sends to `writer` with wrk (throughput),
    then from here at a fixed rate (latency); every message must arrive on a socket."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    delivered = 0
    progress = asyncio.Event()

    async def listen(ws) -> None:
        nonlocal delivered
        async for frame in ws:
            event = json.loads(frame)
            if event["type"] == "message.created":
                key = event["data"]["message"]["client_message_id"]
                if key in sent_at:
                    latencies.append(time.perf_counter() - sent_at.pop(key))
                delivered += 1
                progress.set()

    async def wait_delivered(count: int) -> None:
        deadline = time.monotonic() + 60
        while delivered < count:
            progress.clear()
            await asyncio.wait_for(progress.wait(), max(0.1, deadline - time.monotonic()))

    receivers = [LIST_CONVERSATIONS + 2 + PAIRS + i for i in range(PAIRS)]
    senders = [LIST_CONVERSATIONS + 2 + i for i in range(PAIRS)]
    first_conversation = LIST_CONVERSATIONS + 1
    sockets = []
    for user_id in receivers:
        ws = await connect(f"ws://127.0.0.1:{reader.port}/api/chat/ws?token={tokens[user_id]}")
        assert json.loads(await ws.recv())["type"] == "ready"
        sockets.append(ws)
    listeners = [asyncio.create_task(listen(ws)) for ws in sockets]

    # Throughput: wrk, so that the client is not the bottleneck.
    with tempfile.NamedTemporaryFile("w", suffix=".tokens") as token_file:
        token_file.write("\n".join(tokens[u] for u in senders))
        token_file.flush()
        command = [
            "wrk", "-t2", f"-c{args.concurrency}", f"-d{args.duration}s", "--timeout", "10s",
            "-s", str(HERE / "send.lua"), f"{writer.base}/api/chat/messages",
            "--", token_file.name, str(first_conversation), "2",
        ]  # fmt: skip
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        output, _ = await process.communicate()
    line = next(line for line in output.decode().splitlines() if line.startswith("BENCH "))
    wrk_result = json.loads(line[len("BENCH ") :])
    await wait_delivered(wrk_result["created"])
    all_delivered = time.perf_counter() - started

    # Latency: an open loop at a fixed rate (one send every 1/rate s whatever the answers do).
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=writer.base, timeout=30, limits=limits) as http:

        async def send_one(i: int) -> None:
            pair = i % PAIRS
            key = f"open-{i}"
            body = {
                "conversation_id": first_conversation + pair,
                "content": f"hi {i}",
                "client_message_id": key,
            }
            headers = {"Authorization": f"Bearer {tokens[senders[pair]]}"}
            sent_at[key] = time.perf_counter()
            response = await http.post("/api/chat/messages", json=body, headers=headers)
            assert response.status_code == 201, response.text

        before = delivered
        tasks, started = [], time.perf_counter()
        for i in range(args.open_messages):
            delay = started + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send_one(i)))
        await asyncio.gather(*tasks)
        await wait_delivered(before + args.open_messages)

    for task in listeners:
        task.cancel()
    for ws in sockets:
        await ws.close()
    return {"wrk": wrk_result, "all_delivered_seconds": all_delivered, "open_latency": latencies}


# ---------------------------------------------------------------------------- main


def seed_database(server_url: str, name: str, messages: int) -> tuple[str, float]:
    url = pg.create_database(server_url, name)
    conn = psycopg2.connect(url)
    try:
        apply_schema(conn)
    finally:
        conn.close()
    sql(url, SEED_USERS, {"users": USERS, "conversations": CONVERSATIONS})
    seconds = seed_messages(url, 1, messages, CONVERSATIONS)
    sql(url, SET_MARKERS, {"unread": UNREAD_PER_CONVERSATION, "list_conversations": LIST_CONVERSATIONS})
    return url, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=10_000, help="messages in the small database")
    parser.add_argument("--large", type=int, default=1_000_000, help="messages in the large database")
    parser.add_argument("--list-runs", type=int, default=500)
    parser.add_argument("--duration", type=int, default=15, help="seconds of wrk sends")
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections")
    parser.add_argument("--open-messages", type=int, default=2000, help="open-loop sends")
    parser.add_argument("--rate", type=float, default=100, help="open-loop sends per second")
    parser.add_argument("--quick", action="store_true", help="100k instead of 1M, fewer sends")
    args = parser.parse_args()
    if args.quick:
        args.large, args.list_runs, args.duration, args.open_messages = 100_000, 200, 5, 500

    server_url = os.environ.get("BENCH_DATABASE_URL") or pg.server_url()
    names = [pg.new_name("astegni_bench_chat_small"), pg.new_name("astegni_bench_chat_large")]
    servers: list[Server] = []
    try:
        small_url, _ = seed_database(server_url, names[0], args.small)
        large_url, seconds = seed_database(server_url, names[1], args.large)
        print(
            f"seeded {CONVERSATIONS} conversations, {USERS} users; {args.small:,} messages and "
            f"{args.large:,} messages (the latter in {seconds:.0f} s)"
        )
        settings = Settings(database_url=small_url, secret_key=SECRET, access_token_minutes=240)
        tokens = {u: access_token(settings, u, "student") for u in range(1, USERS + 1)}
        logdir = Path(tempfile.mkdtemp(prefix="bench-chat-"))
        for url in (small_url, small_url, large_url):
            servers.append(Server(url, free_port(), logdir))
        writer, reader, large = servers

        # The list: the same user and page in both databases, measured turn about.
        small_http, large_http = list_latency(
            [(writer, tokens[LIST_USER]), (large, tokens[LIST_USER])], args.list_runs
        )
        small_sql, large_sql = query_latency([small_url, large_url], LIST_USER, args.list_runs)
        for count, http, query in ((args.small, small_http, small_sql), (args.large, large_http, large_sql)):
            print(f"conversation list, {count:>9,} messages: HTTP {ms(http)}; query alone {ms(query)}")
        ratio = percentile(large_http, 50) / percentile(small_http, 50)
        print(f"list p50 ratio {args.large:,} / {args.small:,} messages: {ratio:.2f}x (target <= 1.5x)")
        sql(
            large_url,
            "UPDATE conversation_participants SET last_read_message_id = NULL WHERE user_id = %(u)s",
            {"u": LIST_USER},
        )
        (unread_http,) = list_latency([(large, tokens[LIST_USER])], args.list_runs // 2)
        (unread_sql,) = query_latency([large_url], LIST_USER, args.list_runs // 2)
        print(
            f"  {args.large:,} messages, a user who never read (~{args.large // CONVERSATIONS} unread per "
            f"conversation, all counted): HTTP {ms(unread_http)}; query alone {ms(unread_sql)}"
        )

        result = asyncio.run(messaging(writer, reader, tokens, args))
        wrk_result = result["wrk"]
        print(
            f"sends over REST (wrk, {args.concurrency} connections, {args.duration} s, {PAIRS} sockets open "
            f"on the other process): {wrk_result['created'] / wrk_result['seconds']:.0f} messages/s, "
            f"HTTP p50 {wrk_result['p50_ms']:.1f} ms, p99 {wrk_result['p99_ms']:.1f} ms, "
            f"non-2xx {wrk_result['non2xx']}; all {wrk_result['created']} delivered to the sockets "
            f"{result['all_delivered_seconds'] - args.duration:+.2f} s after wrk's end"
        )
        print(f"delivery to the other process at {args.rate:.0f} sends/s: {ms(result['open_latency'])}")
    finally:
        for server in servers:
            server.stop()
        for name in names:
            pg.drop_database(server_url, name)


if __name__ == "__main__":
    main()
