"""Accessibility: axe-core finds no serious or critical violation on the login page, a room (with
an image and a file in a message, and a file held by the composer), the room switcher, the search
dialog with its results, the settings and the member panel, in the light and the dark theme."""

import pytest
from playwright.sync_api import expect

from conftest import WAIT, axe_violations, http_json, online
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
