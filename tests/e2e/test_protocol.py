"""A plain WebSocket client that knows only docs/protocol.md: the Python `websockets` library,
no Rust client code. It logs in, joins `general`, and chats."""

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


def test_a_python_client_logs_in_joins_general_and_chats(server):
    register(server, "pybot")
    status, session = http_json("POST", server.base + "/api/login",
                                {"username": "pybot", "password": PASSWORD})
    assert status == 200
    token = session["token"]
    other_token = register(server, "listener")

    with open_ws(server, token) as ws, open_ws(server, other_token) as other:
        for conn in (ws, other):
            conn.send(json.dumps({"type": "join", "room": "general"}))
            joined = recv_type(conn, "joined")
            assert joined["room"] == "general"
            history = recv_type(conn, "history")
            assert history["messages"] == []

        ws.send(json.dumps({"type": "send", "room": "general", "client_id": "py-1",
                            "text": "hello from Python"}))
        ack = recv_type(ws, "ack")
        assert ack["client_id"] == "py-1" and ack["seq"] == 1
        msg = recv_type(other, "message")
        assert msg["author"] == "pybot"
        assert msg["text"] == "hello from Python"
        assert msg["seq"] == 1

        # The same client_id again is acknowledged with the same message, not stored twice.
        ws.send(json.dumps({"type": "send", "room": "general", "client_id": "py-1",
                            "text": "hello from Python"}))
        again = recv_type(ws, "ack")
        assert (again["id"], again["seq"]) == (ack["id"], ack["seq"])

        # Errors are frames; the connection stays usable.
        ws.send("this is not json")
        assert recv_type(ws, "error")["code"] == "bad_frame"
        ws.send(json.dumps({"type": "ping", "id": 5}))
        assert recv_type(ws, "pong")["id"] == 5


def test_the_upgrade_needs_a_token(server):
    with pytest.raises(InvalidStatus) as refused:
        with connect(server.ws_url, open_timeout=10):
            pass
    assert refused.value.response.status_code == 401
