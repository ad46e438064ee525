"""Accessibility: axe-core finds no serious or critical violation on the login page, a room, the
room switcher, the settings and the member panel, in the light and the dark theme."""

import pytest
from playwright.sync_api import expect

from conftest import WAIT, axe_violations, http_json, online

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
        assert axe_violations(page) == []

        # The room switcher.
        page.keyboard.press("Control+k")
        expect(page.get_by_test_id("switcher-input")).to_be_focused(timeout=WAIT)
        expect(page.get_by_test_id("switcher-option")).not_to_have_count(0)
        assert axe_violations(page) == []
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("switcher")).to_have_count(0)

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
