"""Accessibility: axe-core finds no serious or critical violation on the login page, a room (with
an image and a file in a message, and a file held by the composer), the room switcher, the search
dialog with its results, the settings and the member panel, in the light and the dark theme."""

import pytest
from playwright.sync_api import expect

from conftest import WAIT, axe_violations, http_json, online, say
from test_files import png, upload

PASSWORD = "a long password"


def context(browser, scheme):
    return browser.new_context(bypass_csp=True, color_scheme=scheme)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_login_page_has_no_serious_accessibility_violation(server, browser, scheme):
    ctx = context(browser, scheme)
    try:
        page = ctx.new_page()
        page.goto(server.base + "/")
        expect(page.get_by_test_id("auth-form")).to_be_visible(timeout=WAIT)
        assert axe_violations(page) == []
    finally:
        ctx.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_room_has_no_serious_accessibility_violation(server, browser, scheme):
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": "ada", "password": PASSWORD})
    assert status == 201, session
    token = session["token"]
    ctx = context(browser, scheme)
    try:
        ctx.add_cookies([{"name": "chat_session", "value": token, "url": server.base}])
        page = ctx.new_page()
        page.goto(server.base + "/")
        expect(page.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)
        online(page)
        # Joined over HTTP too: the page's own join may still be on its way.
        http_json("POST", server.base + "/api/rooms/1/join", {}, token)
        status, res = http_json("POST", server.base + "/api/rooms/1/messages",
                                {"text": "hello **world**, a [link](https://example.com), `code`"},
                                token)
        assert status in (200, 201), (status, res)
        expect(page.get_by_test_id("message")).to_have_count(1, timeout=WAIT)
        # A message with an image and a file, and a file held by the composer.
        image = upload(server, token, 1, "猫.png", png(64, 48))
        other = upload(server, token, 1, "notes.txt", b"notes")
        status, res = http_json("POST", server.base + "/api/rooms/1/messages",
                                {"text": "a cat", "attachments": [image["id"], other["id"]]},
                                token)
        assert status in (200, 201), (status, res)
        expect(page.get_by_test_id("attachment-image")).to_have_count(1, timeout=WAIT)
        expect(page.get_by_test_id("attachment-file")).to_have_count(1, timeout=WAIT)
        page.get_by_test_id("file-input").set_input_files(
            files=[{"name": "held.txt", "mimeType": "text/plain", "buffer": b"held"}])
        expect(page.get_by_test_id("upload")).to_have_attribute("data-state", "done",
                                                                 timeout=WAIT)
        assert axe_violations(page) == []

        # The room switcher.
        page.keyboard.press("Control+k")
        expect(page.get_by_test_id("switcher-input")).to_be_focused(timeout=WAIT)
        expect(page.get_by_test_id("switcher-option")).not_to_have_count(0)
        assert axe_violations(page) == []
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("switcher")).to_have_count(0)

        # The search dialog, with results.
        page.get_by_test_id("search-open").click()
        expect(page.get_by_test_id("search-input")).to_be_focused(timeout=WAIT)
        page.get_by_test_id("search-input").fill("hello")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("search-result")).to_have_count(1, timeout=WAIT)
        assert axe_violations(page) == []
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("search")).to_have_count(0)

        # The settings.
        page.get_by_test_id("settings-open").click()
        expect(page.get_by_test_id("settings")).to_be_visible(timeout=WAIT)
        assert axe_violations(page) == []

        # The member panel.
        page.keyboard.press("Escape")
        page.get_by_test_id("members-toggle").click()
        expect(page.get_by_test_id("member-panel")).to_be_visible(timeout=WAIT)
        assert axe_violations(page) == []
    finally:
        ctx.close()


def _room_with_bob(server, browser, scheme="light", viewport=None):
    """Alice (owner of #den, bob in it) on the chat screen; bob's token."""
    tokens = {}
    for name in ("alice", "bob"):
        status, session = http_json("POST", server.base + "/api/register",
                                    {"username": name, "password": PASSWORD})
        assert status == 201, session
        tokens[name] = session["token"]
    status, room = http_json("POST", server.base + "/api/rooms",
                             {"name": "den", "kind": "public"}, tokens["alice"])
    assert status in (200, 201), room
    status, res = http_json("POST", f"{server.base}/api/rooms/{room['id']}/join", {}, tokens["bob"])
    assert status in (200, 201, 204), res
    kwargs = {"bypass_csp": True, "color_scheme": scheme}
    if viewport:
        kwargs["viewport"] = viewport
    ctx = browser.new_context(**kwargs)
    ctx.add_cookies([{"name": "chat_session", "value": tokens["alice"], "url": server.base}])
    page = ctx.new_page()
    page.goto(server.base + "/")
    online(page)
    if viewport:
        page.get_by_test_id("sidebar-toggle").click()
    page.locator('[data-testid=room-item][data-room="den"]').click()
    expect(page.get_by_test_id("room-title")).to_have_text("#den", timeout=WAIT)
    return ctx, page, room["id"], tokens["bob"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_moderation_confirmation_is_a_named_dialog_that_takes_and_gives_back_the_focus(
        server, browser, scheme):
    ctx, page, _, _ = _room_with_bob(server, browser, scheme)
    try:
        page.get_by_test_id("members-toggle").click()
        kick = page.locator('[data-testid=member-item][data-user="bob"] [data-testid=member-kick]')
        kick.click(timeout=WAIT)
        dialog = page.get_by_test_id("confirm-dialog")
        expect(dialog).to_be_visible(timeout=WAIT)
        expect(page.get_by_role("dialog", name="Remove bob from #den? They may come back.")) \
            .to_be_visible()
        expect(page.get_by_test_id("confirm-reason")).to_be_focused(timeout=WAIT)
        # The filter editor's select is named too (owners see it).
        assert axe_violations(page) == []
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0, timeout=WAIT)
        expect(kick).to_be_focused(timeout=WAIT)
        # The invitation box closes with Escape before the panel does.
        page.get_by_test_id("invite-toggle").click()
        panel = page.get_by_test_id("member-panel")
        expect(panel.get_by_test_id("people-search")).to_be_visible(timeout=WAIT)
        panel.get_by_test_id("people-search").focus()
        page.keyboard.press("Escape")
        expect(panel.get_by_test_id("people-search")).to_have_count(0, timeout=WAIT)
        expect(page.get_by_test_id("invite-toggle")).to_be_focused(timeout=WAIT)
        # The panel itself closes with Escape, the focus back on its button.
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("member-panel")).to_have_count(0, timeout=WAIT)
        expect(page.get_by_test_id("members-toggle")).to_be_focused(timeout=WAIT)
    finally:
        ctx.close()


def test_on_a_phone_the_room_name_shows_and_the_member_panel_closes_by_touch(server, browser):
    ctx, page, _, _ = _room_with_bob(server, browser, viewport={"width": 390, "height": 800})
    try:
        title = page.get_by_test_id("room-title")
        assert title.bounding_box()["width"] > 100
        page.get_by_test_id("members-toggle").click()
        expect(page.get_by_test_id("member-panel")).to_be_visible(timeout=WAIT)
        page.get_by_test_id("members-close").click()
        expect(page.get_by_test_id("member-panel")).to_have_count(0, timeout=WAIT)
    finally:
        ctx.close()


def test_the_announcer_says_new_messages_once_and_bursts_as_a_count_but_not_history(
        server, browser):
    ctx, page, room, bob = _room_with_bob(server, browser)
    try:
        post = lambda text: http_json("POST", f"{server.base}/api/rooms/{room}/messages",
                                      {"text": text}, bob)
        # Messages that arrive in another room, then shown when the room is opened, are not
        # said (neither are the room's loaded pages).
        page.locator('[data-testid=room-item][data-room="general"]').click()
        expect(page.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)
        for n in range(4):
            assert post(f"old {n}")[0] in (200, 201)
        page.wait_for_timeout(500)
        page.locator('[data-testid=room-item][data-room="den"]').click()
        expect(page.get_by_test_id("message")).to_have_count(4, timeout=WAIT)
        announcer = page.get_by_test_id("announcer")
        page.wait_for_timeout(800)
        expect(announcer.locator("p")).to_have_count(0)
        # One live message: said once, with its author.
        assert post("hello there")[0] in (200, 201)
        expect(announcer.locator("p")).to_have_count(1, timeout=WAIT)
        expect(announcer.locator("p")).to_have_text("bob: hello there")
        # A burst: said as a count.
        for n in range(3):
            assert post(f"burst {n}")[0] in (200, 201)
        expect(announcer.locator("p")).to_have_count(2, timeout=WAIT)
        expect(announcer.locator("p").nth(1)).to_have_text("3 new messages")
        # Her own messages are not said.
        say(page, "mine")
        page.wait_for_timeout(800)
        expect(announcer.locator("p")).to_have_count(2)
    finally:
        ctx.close()
