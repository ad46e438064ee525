"""The app opens without the network: a service worker keeps the page and its hashed files, so a
reload while the server is down shows the app (offline, with the messages it has), and it
reconnects when the server is back."""

import re

from playwright.sync_api import expect

from conftest import WAIT, http_json, online, say

PASSWORD = "a long password"


def test_a_reload_while_the_server_is_down_shows_the_app_then_it_reconnects(server, browser):
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": "ada", "password": PASSWORD})
    assert status == 201, session
    ctx = browser.new_context()
    try:
        ctx.add_cookies([{"name": "chat_session", "value": session["token"], "url": server.base}])
        page = ctx.new_page()
        page.goto(server.base + "/")
        online(page)
        say(page, "kept for the offline reload")
        expect(page.get_by_test_id("message")).to_have_count(1, timeout=WAIT)
        # The worker controls the page once it is active (it claims open pages).
        page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller",
                               timeout=WAIT)

        server.stop()
        page.reload()
        # The app, not the browser's error page: its own splash or screens render.
        expect(page.locator("body")).not_to_be_empty(timeout=WAIT)
        expect(page.get_by_test_id("conn-badge")).to_have_attribute(
            "data-state", re.compile("connecting|reconnecting|offline"), timeout=WAIT)
        expect(page.get_by_test_id("message")).to_have_count(1, timeout=WAIT)
        expect(page.get_by_test_id("message-text")).to_have_text("kept for the offline reload")

        server.start()
        online(page)
        say(page, "and back online")
        expect(page.get_by_test_id("message")).to_have_count(2, timeout=WAIT)
    finally:
        ctx.close()
