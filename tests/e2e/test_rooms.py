"""Rooms and people in a real (headless) Chromium against the real server: direct conversations
from the people picker, private rooms, invitations, moderation, filters, drafts per room,
non-Latin names, rooms appearing live, and reconnecting soon after an outage.

Each test gets a fresh server and database and fresh browser contexts (one per person). People
are registered over HTTP and handed the session cookie, except where registration itself is
under test.
"""

import contextlib
import time

from playwright.sync_api import expect

from conftest import WAIT, http_json, online, say

PASSWORD = "a long password"


@contextlib.contextmanager
def person(browser, server, name, display_name=None):
    """A logged-in person on the chat screen: registered over HTTP, their own browser context
    holding the session cookie."""
    body = {"username": name, "password": PASSWORD}
    if display_name:
        body["display_name"] = display_name
    status, session = http_json("POST", server.base + "/api/register", body)
    assert status == 201, session
    ctx = browser.new_context()
    try:
        ctx.add_cookies([{"name": "chat_session", "value": session["token"], "url": server.base}])
        page = ctx.new_page()
        page.goto(server.base + "/")
        expect(page.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)
        online(page)
        yield page
    finally:
        ctx.close()


def texts(page):
    return page.get_by_test_id("message-text")


def room_item(page, name):
    return page.locator(f'[data-testid=room-item][data-room="{name}"]')


def create_room(page, name, kind="public"):
    page.get_by_test_id("new-room-input").fill(name)
    page.get_by_test_id("new-room-kind").select_option(kind)
    page.get_by_test_id("new-room-button").click()
    expect(page.get_by_test_id("room-title")).to_have_text(f"#{name}", timeout=WAIT)


def pick(page, scope, handle):
    """Searches `handle` in the people picker inside `scope` and picks them."""
    scope.get_by_test_id("people-search").fill(handle)
    scope.locator(f'[data-testid=people-result][data-user="{handle}"]').click(timeout=WAIT)
    expect(scope.locator(f'[data-testid=people-selected][data-user="{handle}"]')).to_be_visible()
    scope.get_by_test_id("people-submit").click()


def open_members(page):
    page.get_by_test_id("members-toggle").click()
    panel = page.get_by_test_id("member-panel")
    expect(panel).to_be_visible(timeout=WAIT)
    return panel


def test_two_people_open_a_direct_conversation_from_the_people_picker(server, browser):
    with person(browser, server, "alice") as alice, person(browser, server, "bob") as bob:
        alice.get_by_test_id("new-dm-button").click()
        pick(alice, alice.get_by_test_id("new-dm"), "bob")
        expect(alice.get_by_test_id("room-title")).to_have_text("bob", timeout=WAIT)

        # Bob's list shows it at once, named after the other person, without a reload.
        dm = bob.get_by_test_id("dm-list").get_by_test_id("room-item")
        expect(dm).to_have_count(1, timeout=WAIT)
        expect(dm).to_have_attribute("data-room", "alice")
        expect(dm).to_have_attribute("data-kind", "direct")

        say(alice, "hi bob, just us")
        expect(dm.get_by_test_id("room-unread")).to_have_text("1", timeout=WAIT)
        dm.click()
        expect(bob.get_by_test_id("room-title")).to_have_text("alice", timeout=WAIT)
        expect(texts(bob)).to_have_text(["hi bob, just us"], timeout=WAIT)
        say(bob, "hi alice")
        expect(texts(alice)).to_have_text(["hi bob, just us", "hi alice"], timeout=WAIT)

        # Opening it again from the picker reopens the same conversation.
        alice.get_by_test_id("room-item").filter(has_text="general").click()
        alice.get_by_test_id("new-dm-button").click()
        pick(alice, alice.get_by_test_id("new-dm"), "bob")
        expect(alice.get_by_test_id("room-title")).to_have_text("bob", timeout=WAIT)
        expect(alice.get_by_test_id("dm-list").get_by_test_id("room-item")).to_have_count(1)
        expect(texts(alice)).to_have_text(["hi bob, just us", "hi alice"], timeout=WAIT)

        # Arrivals and departures stay out of the timeline, however often someone reloads.
        for _ in range(3):
            bob.reload()
            online(bob)
        time.sleep(0.5)
        expect(alice.get_by_test_id("notice")).to_have_count(0)


def test_a_private_room_is_invisible_to_anyone_not_in_it(server, browser):
    with person(browser, server, "alice") as alice, person(browser, server, "carol") as carol:
        create_room(alice, "secret-plans", "private")
        expect(room_item(alice, "secret-plans")).to_have_attribute("data-kind", "private")
        # A public room created after it reaches carol live: by then the private one would have.
        create_room(alice, "open-plaza")
        expect(room_item(carol, "open-plaza")).to_be_visible(timeout=WAIT)
        expect(room_item(carol, "secret-plans")).to_have_count(0)
        assert "secret-plans" not in carol.content()
        carol.reload()
        online(carol)
        expect(room_item(carol, "open-plaza")).to_be_visible(timeout=WAIT)
        expect(room_item(carol, "secret-plans")).to_have_count(0)
        assert "secret-plans" not in carol.content()


def test_a_moderator_bans_someone_who_sees_why_and_loses_the_room(server, browser):
    with person(browser, server, "alice") as alice, person(browser, server, "bob") as bob:
        create_room(alice, "inner-circle", "private")
        panel = open_members(alice)
        panel.get_by_test_id("invite-toggle").click()
        pick(alice, panel, "bob")
        expect(panel.get_by_test_id("invite-done")).to_contain_text("bob", timeout=WAIT)

        # The invitation reaches bob live; accepting joins and opens the room.
        invite = bob.locator('[data-testid=invite-item]')
        expect(invite).to_have_count(1, timeout=WAIT)
        invite.get_by_test_id("invite-accept").click()
        expect(bob.get_by_test_id("room-title")).to_have_text("#inner-circle", timeout=WAIT)
        expect(bob.get_by_test_id("invite-item")).to_have_count(0)
        say(bob, "glad to be here")
        expect(texts(alice)).to_have_text(["glad to be here"], timeout=WAIT)

        member = panel.locator('[data-testid=member-item][data-user="bob"]')
        expect(member).to_be_visible(timeout=WAIT)
        expect(panel.locator('[data-testid=member-item][data-user="alice"]')).to_have_attribute("data-role", "owner")
        member.get_by_test_id("member-ban").click()
        dialog = alice.get_by_test_id("confirm-dialog")
        expect(dialog).to_be_visible()
        dialog.get_by_test_id("confirm-reason").fill("spam")
        dialog.get_by_test_id("confirm-ok").click()
        expect(dialog).to_have_count(0, timeout=WAIT)
        expect(member).to_have_count(0, timeout=WAIT)

        notice = bob.locator("[data-testid=room-notice][data-kind=banned]")
        expect(notice.get_by_test_id("room-notice-text")).to_have_text(
            "You were banned from #inner-circle by alice: spam", timeout=WAIT)
        expect(bob.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)
        expect(room_item(bob, "inner-circle")).to_have_count(0)
        # The audit log says so.
        expect(panel.locator("[data-testid=audit-item][data-action=ban]")).to_contain_text("bob", timeout=WAIT)


def test_a_room_filter_refuses_a_message_and_says_which_rule(server, browser):
    with person(browser, server, "alice") as alice:
        create_room(alice, "clean-talk")
        panel = open_members(alice)
        editor = panel.get_by_test_id("filter-editor")
        # An invalid expression is refused with the parser's words.
        editor.get_by_test_id("filter-kind").select_option("regex")
        editor.get_by_test_id("filter-pattern").fill("(unclosed")
        editor.get_by_test_id("filter-add").click()
        expect(editor.get_by_test_id("filter-error")).to_contain_text("unclosed group", timeout=WAIT)
        expect(editor.get_by_test_id("filter-item")).to_have_count(0)
        # In Chinese: the reason in Chinese, then the parser's own words about where it fails.
        alice.evaluate("localStorage.setItem('chat.lang', 'zh-CN')")
        alice.reload()
        expect(alice.get_by_test_id("room-title")).to_have_text("#clean-talk", timeout=WAIT)
        panel = open_members(alice)
        editor = panel.get_by_test_id("filter-editor")
        editor.get_by_test_id("filter-kind").select_option("regex")
        editor.get_by_test_id("filter-pattern").fill("(unclosed")
        editor.get_by_test_id("filter-add").click()
        error = editor.get_by_test_id("filter-error")
        expect(error).to_contain_text("规则无效：", timeout=WAIT)
        expect(error).to_contain_text("unclosed group")
        alice.evaluate("localStorage.setItem('chat.lang', 'en')")
        alice.reload()
        expect(alice.get_by_test_id("room-title")).to_have_text("#clean-talk", timeout=WAIT)
        panel = open_members(alice)
        editor = panel.get_by_test_id("filter-editor")

        editor.get_by_test_id("filter-kind").select_option("keyword")
        editor.get_by_test_id("filter-pattern").fill("rhubarb")
        editor.get_by_test_id("filter-add").click()
        expect(editor.get_by_test_id("filter-item")).to_have_count(1, timeout=WAIT)
        expect(editor.get_by_test_id("filter-item")).to_contain_text("rhubarb")

        say(alice, "fine words")
        say(alice, "too much Rhubarb today")
        failed = alice.locator("[data-testid=message][data-state=failed]")
        expect(failed).to_have_count(1, timeout=WAIT)
        expect(failed.get_by_test_id("message-text")).to_have_text("too much Rhubarb today")
        expect(failed.get_by_test_id("message-error")).to_contain_text('"rhubarb"')
        expect(alice.locator("[data-testid=message][data-state=sent]")).to_have_count(1, timeout=WAIT)


def test_a_draft_stays_with_its_room_and_survives_a_reload(server, browser):
    with person(browser, server, "alice") as alice:
        create_room(alice, "room-b")
        composer = alice.get_by_test_id("composer")
        room_item(alice, "general").click()
        expect(alice.get_by_test_id("room-title")).to_have_text("#general")
        composer.fill("half a thought for general")
        room_item(alice, "room-b").click()
        expect(alice.get_by_test_id("room-title")).to_have_text("#room-b")
        expect(composer).to_have_value("")
        composer.fill("something for b")
        room_item(alice, "general").click()
        expect(composer).to_have_value("half a thought for general")

        alice.reload()
        online(alice)
        expect(alice.get_by_test_id("room-title")).to_have_text("#general")
        expect(composer).to_have_value("half a thought for general", timeout=WAIT)
        room_item(alice, "room-b").click()
        expect(composer).to_have_value("something for b")
        # Sending clears the room's draft.
        composer.press("Enter")
        expect(texts(alice)).to_have_text(["something for b"], timeout=WAIT)
        room_item(alice, "general").click()
        room_item(alice, "room-b").click()
        expect(composer).to_have_value("")


def test_a_chinese_display_name_and_room_name_reach_another_person(server, browser):
    with person(browser, server, "bob") as bob:
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            page.goto(server.base + "/")
            page.get_by_test_id("username-input").fill("zhang")
            page.get_by_test_id("password-input").fill(PASSWORD)
            page.get_by_test_id("display-name-input").fill("张三丰")
            page.get_by_test_id("register-button").click()
            expect(page.get_by_test_id("current-user")).to_have_text("张三丰", timeout=WAIT)
            online(page)

            create_room(page, "技术讨论")
            item = room_item(bob, "技术讨论")
            expect(item).to_be_visible(timeout=WAIT)
            item.click()
            expect(bob.get_by_test_id("room-title")).to_have_text("#技术讨论", timeout=WAIT)
            say(page, "大家好")
            expect(texts(bob)).to_have_text(["大家好"], timeout=WAIT)
            expect(bob.get_by_test_id("message-author")).to_have_text(["张三丰"])

            panel = open_members(bob)
            zhang = panel.locator('[data-testid=member-item][data-user="zhang"]')
            expect(zhang.get_by_test_id("member-name")).to_have_text("张三丰", timeout=WAIT)
            expect(zhang.get_by_test_id("member-handle")).to_have_text("@zhang")
        finally:
            ctx.close()


def test_a_room_created_by_another_person_appears_without_a_reload(server, browser):
    with person(browser, server, "alice") as alice, person(browser, server, "bob") as bob:
        create_room(alice, "fresh-room")
        item = room_item(bob, "fresh-room")
        expect(item).to_be_visible(timeout=WAIT)
        expect(item).to_have_attribute("data-joined", "false")
        item.click()
        expect(bob.get_by_test_id("room-title")).to_have_text("#fresh-room", timeout=WAIT)
        expect(item).to_have_attribute("data-joined", "true", timeout=WAIT)


def test_the_page_reconnects_soon_after_the_server_returns(server, browser):
    with person(browser, server, "alice") as alice:
        server.stop()
        banner = alice.get_by_test_id("conn-banner")
        expect(banner).to_be_visible(timeout=WAIT)
        expect(banner.get_by_test_id("reconnect-now")).to_be_visible()
        # Long enough for the backoff to grow well past the probe interval.
        time.sleep(8)
        server.start()
        started = time.monotonic()
        online(alice)
        assert time.monotonic() - started < 8, "reconnected by a probe, not at the end of the backoff"
        expect(banner).to_have_count(0)
