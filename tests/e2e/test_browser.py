"""People in a real (headless) Chromium using the real server and the release build of the client.

Each test gets a fresh server and database (the `server` fixture) and fresh browser contexts, so
cookies and localStorage never leak between people or tests.
"""

import contextlib
import json

from playwright.sync_api import expect
from websockets.sync.client import connect

from conftest import WAIT, http_json, say

PASSWORD = "a long password"


def register(page, server, name):
    page.goto(server.base + "/")
    page.get_by_test_id("username-input").fill(name)
    page.get_by_test_id("password-input").fill(PASSWORD)
    page.get_by_test_id("register-button").click()
    expect(page.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)
    expect(page.get_by_test_id("conn-badge")).to_have_attribute("data-state", "online", timeout=WAIT)


def texts(page):
    return page.get_by_test_id("message-text")


@contextlib.contextmanager
def person(browser, **kwargs):
    ctx = browser.new_context(**kwargs)
    try:
        yield ctx, ctx.new_page()
    finally:
        ctx.close()


def test_two_people_chat_in_general_and_the_history_survives_a_reload(server, browser):
    with person(browser) as (_, alice), person(browser) as (_, bob):
        register(alice, server, "alice")
        register(bob, server, "bob")
        expect(alice.get_by_test_id("online-user")).to_have_count(2, timeout=WAIT)

        say(alice, "hello from alice")
        expect(texts(bob)).to_have_text(["hello from alice"], timeout=WAIT)
        evil = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
        say(bob, evil)

        both = ["hello from alice", evil]
        for page in (alice, bob):
            expect(texts(page)).to_have_text(both, timeout=WAIT)
            expect(page.locator('[data-testid=message][data-state=sent]')).to_have_count(2, timeout=WAIT)
            # Markup in a message is text: nothing ran, no element was made from it.
            assert page.evaluate("window.pwned") is None
            assert page.get_by_test_id("message-list").locator("img, script").count() == 0
        authors = alice.get_by_test_id("message-author")
        expect(authors).to_have_text(["alice", "bob"])
        expect(alice.get_by_test_id("message-time").first).not_to_be_empty()

        bob.reload()
        expect(bob.get_by_test_id("conn-badge")).to_have_attribute("data-state", "online", timeout=WAIT)
        expect(texts(bob)).to_have_text(both, timeout=WAIT)
        expect(bob.locator("[data-testid=message]").nth(0)).to_have_attribute("data-seq", "1")
        expect(bob.locator("[data-testid=message]").nth(1)).to_have_attribute("data-seq", "2")


def test_registration_and_login_errors_are_shown(server, browser):
    with person(browser) as (_, page):
        register(page, server, "alice")
        page.get_by_test_id("logout-button").click()
        expect(page.get_by_test_id("auth-form")).to_be_visible(timeout=WAIT)

        page.get_by_test_id("username-input").fill("alice")
        page.get_by_test_id("password-input").fill("not the password")
        page.get_by_test_id("login-button").click()
        expect(page.get_by_test_id("auth-error")).to_contain_text("Wrong username or password", timeout=WAIT)

        # The refusal was about what was sent: editing hides it until the next try.
        page.get_by_test_id("password-input").fill(PASSWORD)
        expect(page.get_by_test_id("auth-error")).to_have_count(0)
        page.get_by_test_id("register-button").click()
        expect(page.get_by_test_id("auth-error")).to_contain_text("taken", timeout=WAIT)

        page.get_by_test_id("login-button").click()
        expect(page.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)


def test_a_python_websocket_client_chats_with_a_browser_user(server, browser):
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": "pybot", "password": PASSWORD})
    assert status == 201
    with person(browser) as (_, alice):
        register(alice, server, "alice")
        headers = {"Authorization": f"Bearer {session['token']}"}
        with connect(server.ws_url, additional_headers=headers, open_timeout=10) as ws:
            def frame(kind):
                while True:
                    f = json.loads(ws.recv(timeout=10))
                    if f["type"] == kind:
                        return f

            assert frame("hello")["user"] == "pybot"
            ws.send(json.dumps({"type": "join", "room": 1}))
            assert "alice" in frame("joined")["online"]
            frame("history")
            expect(alice.get_by_test_id("online-user")).to_have_count(2, timeout=WAIT)

            ws.send(json.dumps({"type": "send", "room": 1, "client_id": "py-1",
                                "text": "hello from Python"}))
            expect(texts(alice)).to_have_text(["hello from Python"], timeout=WAIT)
            expect(alice.get_by_test_id("message-author")).to_have_text(["pybot"])

            say(alice, "hello, bot")
            while True:
                m = frame("message")
                if m["author"] == "alice":
                    break
            assert m["text"] == "hello, bot" and m["seq"] == 2


def test_messages_typed_while_the_server_is_down_are_sent_once_when_it_returns(server, browser):
    with person(browser) as (_, alice), person(browser) as (_, bob):
        register(alice, server, "alice")
        register(bob, server, "bob")
        server.stop()
        expect(alice.get_by_test_id("conn-badge")).not_to_have_attribute("data-state", "online", timeout=WAIT)

        say(alice, "typed while offline 1")
        say(alice, "typed while offline 2")
        pending = alice.locator("[data-testid=message][data-state=pending]")
        expect(pending).to_have_count(2)

        server.start()
        expected = ["typed while offline 1", "typed while offline 2"]
        for page in (alice, bob):
            expect(page.get_by_test_id("conn-badge")).to_have_attribute("data-state", "online", timeout=45_000)
            expect(texts(page)).to_have_text(expected, timeout=WAIT)
        expect(alice.locator("[data-testid=message][data-state=sent]")).to_have_count(2, timeout=WAIT)
        # Delivered once: the server's log has exactly these two messages.
        assert stored_texts(server) == expected


def test_a_message_pending_across_a_reload_and_a_reopened_tab_is_delivered_once(server, browser):
    with person(browser) as (_, bob):
        register(bob, server, "bob")
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            register(page, server, "alice")
            # From now on alice's WebSockets are refused as soon as they open: she is cut off
            # from the server while the page itself still loads.
            ctx.route_web_socket("**/ws", lambda ws: ws.close())
            page.reload()
            expect(page.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)
            say(page, "survives a reload")
            pending = page.locator("[data-testid=message][data-state=pending]")
            expect(pending).to_have_count(1)

            page.reload()
            expect(pending).to_have_count(1, timeout=WAIT)
            expect(texts(page)).to_have_text(["survives a reload"])
            # Close the tab; open the app again with the same browser storage, connected.
            state = ctx.storage_state()
        finally:
            ctx.close()

        with person(browser, storage_state=state) as (_, again):
            again.goto(server.base + "/")
            expect(again.get_by_test_id("conn-badge")).to_have_attribute("data-state", "online", timeout=WAIT)
            expect(again.locator("[data-testid=message][data-state=sent]")).to_have_count(1, timeout=WAIT)
            expect(texts(bob)).to_have_text(["survives a reload"], timeout=WAIT)
            again.reload()
            expect(texts(again)).to_have_text(["survives a reload"], timeout=WAIT)
        assert stored_texts(server) == ["survives a reload"]


def stored_texts(server):
    """Every message of `general` as stored, read with a fresh plain client."""
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": "auditor", "password": PASSWORD})
    if status == 409:
        status, session = http_json("POST", server.base + "/api/login",
                                    {"username": "auditor", "password": PASSWORD})
    assert status in (200, 201), session
    headers = {"Authorization": f"Bearer {session['token']}"}
    with connect(server.ws_url, additional_headers=headers, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "join", "room": 1, "since": 0}))
        out = []
        while True:
            f = json.loads(ws.recv(timeout=10))
            if f["type"] == "joined":
                last = f["last_seq"]
                if last == 0:
                    return out
            elif f["type"] == "message":
                out.append(f["text"])
                if f["seq"] == last:
                    return out
