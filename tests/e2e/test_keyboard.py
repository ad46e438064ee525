"""Keyboard only: log in, switch rooms (the quick switcher, Alt+Up/Down), send, and edit the last
message, without a mouse; the skip link; the phone drawer out of the Tab order until opened, and
closed by Escape."""

from playwright.sync_api import expect

from conftest import WAIT, http_json, online

PASSWORD = "a long password"


def focused_testid(page):
    return page.evaluate("document.activeElement && document.activeElement.dataset.testid")


def test_log_in_switch_rooms_send_and_edit_with_the_keyboard_alone(server, browser):
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": "kay", "password": PASSWORD})
    assert status == 201, session
    status, room = http_json("POST", server.base + "/api/rooms",
                             {"name": "random", "kind": "public"}, session["token"])
    assert status in (200, 201), room
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(server.base + "/")
        expect(page.get_by_test_id("username-input")).to_be_focused(timeout=WAIT)
        page.keyboard.type("kay")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        online(page)
        # After login the focus is in the message box.
        expect(page.get_by_test_id("composer")).to_be_focused(timeout=WAIT)
        page.keyboard.type("first from the keyboard")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("message-text")).to_have_text(["first from the keyboard"],
                                                                 timeout=WAIT)

        # The quick switcher.
        page.keyboard.press("Control+k")
        expect(page.get_by_test_id("switcher-input")).to_be_focused(timeout=WAIT)
        page.keyboard.type("rand")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("room-title")).to_have_text("#random", timeout=WAIT)
        expect(page.get_by_test_id("composer")).to_be_focused(timeout=WAIT)
        page.keyboard.type("in random")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("message-text")).to_have_text(["in random"], timeout=WAIT)

        # Alt+Up/Down move between rooms in the sidebar's order.
        page.keyboard.press("Alt+ArrowUp")
        expect(page.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)
        expect(page.get_by_test_id("composer")).to_be_focused(timeout=WAIT)

        # Up in the empty box edits the last message of one's own.
        page.keyboard.press("ArrowUp")
        editor = page.get_by_test_id("edit-input")
        expect(editor).to_be_focused(timeout=WAIT)
        page.keyboard.press("Control+a")
        page.keyboard.type("first, edited")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("message-text")).to_contain_text(["first, edited"],
                                                                    timeout=WAIT)
        expect(page.get_by_test_id("message-edited")).to_be_visible()
        expect(page.get_by_test_id("composer")).to_be_focused(timeout=WAIT)
    finally:
        ctx.close()


def test_the_skip_link_comes_first_and_the_message_list_scrolls_from_the_keyboard(server, browser):
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": "lee", "password": PASSWORD})
    assert status == 201, session
    ctx = browser.new_context()
    try:
        ctx.add_cookies([{"name": "chat_session", "value": session["token"], "url": server.base}])
        page = ctx.new_page()
        page.goto(server.base + "/")
        online(page)
        # The first element Tab reaches on the page is the skip link.
        first = page.evaluate("""() => {
            const all = document.querySelectorAll(
                'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])');
            const shown = [...all].find(e => !e.disabled && !e.closest('[inert]'));
            return shown && shown.dataset.testid;
        }""")
        assert first == "skip-link"
        page.get_by_test_id("skip-link").focus()
        expect(page.get_by_test_id("skip-link")).to_be_in_viewport()
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("message-list")).to_be_focused()
        # Landmarks a screen reader lists.
        expect(page.locator("main")).to_have_count(1)
        expect(page.locator("nav")).not_to_have_count(0)
        expect(page.locator("header")).not_to_have_count(0)
    finally:
        ctx.close()


def test_the_closed_phone_drawer_is_out_of_the_tab_order_and_escape_closes_it(server, browser):
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": "moe", "password": PASSWORD})
    assert status == 201, session
    ctx = browser.new_context(viewport={"width": 390, "height": 800})
    try:
        ctx.add_cookies([{"name": "chat_session", "value": session["token"], "url": server.base}])
        page = ctx.new_page()
        page.goto(server.base + "/")
        online(page)
        sidebar = page.get_by_test_id("sidebar")
        # Closed: nothing in it can be reached with Tab.
        for _ in range(12):
            page.keyboard.press("Tab")
            inside = page.evaluate(
                "!!document.activeElement.closest('[data-testid=sidebar]')")
            assert not inside, focused_testid(page)
        page.get_by_test_id("sidebar-toggle").focus()
        page.keyboard.press("Enter")
        expect(sidebar).to_have_class("sidebar open", timeout=WAIT)
        # Escape closes the "new message" picker first, then the drawer.
        page.get_by_test_id("new-dm-button").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("people-search")).to_be_visible(timeout=WAIT)
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("people-search")).to_have_count(0, timeout=WAIT)
        expect(page.get_by_test_id("new-dm-button")).to_be_focused(timeout=WAIT)
        expect(sidebar).to_have_class("sidebar open")
        page.keyboard.press("Escape")
        expect(sidebar).not_to_have_class("sidebar open", timeout=WAIT)
        expect(page.get_by_test_id("sidebar-toggle")).to_be_focused()
    finally:
        ctx.close()
