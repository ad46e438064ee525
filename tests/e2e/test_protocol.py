"""A plain WebSocket and HTTP client that knows only docs/protocol.md: the Python `websockets`
library and urllib, no Rust client code. It logs in, finds `general`'s id, joins it, and chats."""

import contextlib
import json

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import http_json

PASSWORD = "a long password"


def register(server, name):
    status, body = http_json("POST", server.base + "/api/register",
                             {"username": name, "password": PASSWORD})
    assert status == 201, body
    return body["token"]


@contextlib.contextmanager
def open_ws(server, token):
    with connect(server.ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                 open_timeout=10) as ws:
        hello = recv(ws)
        assert hello["type"] == "hello"
        yield ws


def recv(ws, timeout=10):
    return json.loads(ws.recv(timeout=timeout))


def recv_type(ws, kind, timeout=10):
    while True:
        frame = recv(ws, timeout)
        if frame["type"] == kind:
            return frame


def general_id(server, token):
    status, rooms = http_json("GET", server.base + "/api/rooms", token=token)
    assert status == 200, rooms
    return next(r["id"] for r in rooms if r["name"] == "general")


def test_a_python_client_logs_in_joins_general_and_chats(server):
    register(server, "pybot")
    status, session = http_json("POST", server.base + "/api/login",
                                {"username": "pybot", "password": PASSWORD})
    assert status == 200
    token = session["token"]
    other_token = register(server, "listener")
    general = general_id(server, token)

    with open_ws(server, token) as ws, open_ws(server, other_token) as other:
        for n, conn in enumerate((ws, other)):
            conn.send(json.dumps({"req": n, "type": "join", "room": general}))
            joined = recv_type(conn, "joined")
            assert joined["room"] == general and joined["req"] == n
            history = recv_type(conn, "history")
            assert history["messages"] == [] and history["req"] == n

        ws.send(json.dumps({"req": 10, "type": "send", "room": general, "client_id": "py-1",
                            "text": "hello from Python"}))
        ack = recv_type(ws, "ack")
        assert ack["client_id"] == "py-1" and ack["seq"] == 1 and ack["req"] == 10
        msg = recv_type(other, "message")
        assert msg["author"] == "pybot" and msg["author_name"] == "pybot"
        assert msg["text"] == "hello from Python"
        assert msg["seq"] == 1

        # The same client_id again is acknowledged with the same message, not stored twice.
        ws.send(json.dumps({"type": "send", "room": general, "client_id": "py-1",
                            "text": "hello from Python"}))
        again = recv_type(ws, "ack")
        assert (again["id"], again["seq"]) == (ack["id"], ack["seq"])
        assert "req" not in again, "no req asked, none echoed"

        # Errors are frames; the connection stays usable.
        ws.send("this is not json")
        assert recv_type(ws, "error")["code"] == "bad_frame"
        ws.send(json.dumps({"req": 11, "type": "ping", "id": 5}))
        pong = recv_type(ws, "pong")
        assert pong["id"] == 5 and pong["req"] == 11


def test_a_python_bot_posts_and_reads_over_plain_http(server):
    token = register(server, "httpbot")
    general = general_id(server, token)
    base = f"{server.base}/api/rooms/{general}"
    status, body = http_json("POST", base + "/messages", {"client_id": "h1", "text": "hi"}, token)
    assert status == 403 and body["code"] == "not_joined", body
    status, body = http_json("POST", base + "/join", token=token)
    assert status == 200, body
    status, posted = http_json("POST", base + "/messages", {"client_id": "h1", "text": "hi"}, token)
    assert status == 201, posted
    status, page = http_json("GET", base + "/messages", token=token)
    assert status == 200
    assert [m["text"] for m in page["messages"]][-1] == "hi"
    assert page["messages"][-1]["seq"] == posted["seq"]


def test_the_upgrade_needs_a_token(server):
    with pytest.raises(InvalidStatus) as refused:
        with connect(server.ws_url, open_timeout=10):
            pass
    assert refused.value.response.status_code == 401
