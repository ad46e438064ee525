"""Messages that change and that people follow, in a real (headless) Chromium against the real
server: edits and deletions seen by the other person, reactions toggled, a reply that jumps to
its original far back in the history, a mention notified while the tab is hidden, unread counts
that survive a reload, and the "new messages below" bar.

Each test gets a fresh server and database and one browser context per person. People are
registered over HTTP and handed the session cookie; messages that only set the scene are posted
over HTTP too.
"""

import contextlib
import re
import time

from playwright.sync_api import expect

from conftest import WAIT, http_json, online, say

PASSWORD = "a long password"

# Makes the page report itself hidden, and records notifications instead of showing them.
HIDDEN_AND_NOTIFIED = """
Object.defineProperty(Document.prototype, 'hidden', {get() { return true; }});
Object.defineProperty(Document.prototype, 'visibilityState', {get() { return 'hidden'; }});
window.__notes = [];
window.Notification = class {
  constructor(title, opts) { window.__notes.push({title, body: opts && opts.body}); }
  static get permission() { return 'granted'; }
  static requestPermission() { return Promise.resolve('granted'); }
};
"""


def register(server, name):
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": name, "password": PASSWORD})
    assert status == 201, session
    return session["token"]


@contextlib.contextmanager
def person(browser, server, name, init_script=None):
    """A logged-in person on the chat screen, and their token for HTTP calls."""
    token = register(server, name)
    ctx = browser.new_context()
    try:
        if init_script:
            ctx.add_init_script(init_script)
        ctx.add_cookies([{"name": "chat_session", "value": token, "url": server.base}])
        page = ctx.new_page()
        page.goto(server.base + "/")
        expect(page.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)
        online(page)
        yield page, token
    finally:
        ctx.close()


def post(server, token, room, text, n=0, reply_to=None):
    """Posts a message over HTTP, waiting out rate limits; returns its seq."""
    body = {"client_id": f"e2e-{room}-{n}-{time.monotonic_ns()}", "text": text}
    if reply_to:
        body["reply_to"] = reply_to
    deadline = time.monotonic() + 30
    while True:
        status, res = http_json("POST", f"{server.base}/api/rooms/{room}/messages", body, token)
        if status == 429 and time.monotonic() < deadline:
            time.sleep(res.get("retry_after_ms", 500) / 1000)
            continue
        assert status in (200, 201), (status, res)
        return res["seq"]


def row(page, seq):
    return page.locator(f'[data-testid=message][data-seq="{seq}"]')


def text_of(page, seq):
    return row(page, seq).get_by_test_id("message-text")


def test_an_edit_and_a_deletion_show_for_the_other_person(server, browser):
    with person(browser, server, "alice") as (alice, _), person(browser, server, "bob") as (bob, _):
        say(alice, "helo wrold")
        say(alice, "a mistake")
        expect(text_of(bob, 2)).to_have_text("a mistake", timeout=WAIT)

        row(alice, 1).hover()
        row(alice, 1).get_by_test_id("action-edit").click()
        edit = alice.get_by_test_id("edit-input")
        edit.fill("hello world")
        edit.press("Enter")
        expect(text_of(bob, 1)).to_have_text("hello world (edited)", timeout=WAIT)
        expect(row(bob, 1).get_by_test_id("message-edited")).to_have_attribute("title", re.compile(r"\d"))

        # Deleting asks in the row; Escape cancels, the focus back on the delete button.
        row(alice, 2).hover()
        row(alice, 2).get_by_test_id("action-delete").click()
        question = row(alice, 2).get_by_test_id("delete-confirm")
        expect(question).to_contain_text("Delete this message?")
        expect(question.get_by_test_id("delete-no")).to_be_focused()
        alice.keyboard.press("Escape")
        expect(question).to_have_count(0)
        expect(row(alice, 2).get_by_test_id("action-delete")).to_be_focused()
        expect(text_of(alice, 2)).to_have_text("a mistake")
        row(alice, 2).get_by_test_id("action-delete").click()
        row(alice, 2).get_by_test_id("delete-yes").click()
        expect(row(bob, 2).get_by_test_id("message-deleted")).to_have_text("message deleted", timeout=WAIT)
        # Bob may not edit or delete alice's words.
        expect(row(bob, 1).get_by_test_id("action-edit")).to_have_count(0)
        expect(row(bob, 1).get_by_test_id("action-delete")).to_have_count(0)

        # Up in an empty composer edits the last own message.
        alice.get_by_test_id("composer").press("ArrowUp")
        expect(alice.get_by_test_id("edit-input")).to_have_value("hello world", timeout=WAIT)
        alice.get_by_test_id("edit-input").press("Escape")
        expect(alice.get_by_test_id("edit-input")).to_have_count(0)

        # The same after a reload: the history holds them as they are now.
        bob.reload()
        online(bob)
        expect(text_of(bob, 1)).to_have_text("hello world (edited)", timeout=WAIT)
        expect(row(bob, 2).get_by_test_id("message-deleted")).to_have_count(1)


def test_a_reaction_toggles(server, browser):
    with person(browser, server, "alice") as (alice, _), person(browser, server, "bob") as (bob, _):
        say(alice, "lunch?")
        expect(text_of(bob, 1)).to_have_text("lunch?", timeout=WAIT)
        row(bob, 1).hover()
        row(bob, 1).get_by_test_id("action-react").click()
        bob.locator('[data-testid=emoji-option][data-emoji="👍"]').click()

        chip = row(alice, 1).get_by_test_id("reaction")
        expect(chip).to_have_text("👍 1", timeout=WAIT)
        expect(chip).to_have_attribute("title", "bob")
        expect(chip).to_have_attribute("aria-pressed", "false")

        # Alice adds hers by the chip; then bob takes his back.
        chip.click()
        expect(row(bob, 1).get_by_test_id("reaction")).to_have_text("👍 2", timeout=WAIT)
        row(bob, 1).get_by_test_id("reaction").click()
        expect(chip).to_have_text("👍 1", timeout=WAIT)
        expect(chip).to_have_attribute("title", "alice")
        expect(row(bob, 1).get_by_test_id("reaction")).to_have_attribute("aria-pressed", "false", timeout=WAIT)


def test_a_reply_jumps_to_its_original_far_back_in_the_history(server, browser):
    token = register(server, "carol")
    http_json("POST", server.base + "/api/rooms/1/join", None, token)
    first = post(server, token, 1, "the original question")
    for n in range(60):
        post(server, token, 1, f"filler {n}", n)
    post(server, token, 1, "the answer", 99, reply_to=first)
    with person(browser, server, "bob") as (bob, _):
        answer = bob.locator("[data-testid=message]").last
        quote = answer.get_by_test_id("reply-quote")
        expect(quote).to_have_text("carol: the original question", timeout=WAIT)
        expect(row(bob, first)).to_have_count(0)
        quote.click()
        original = row(bob, first)
        expect(original).to_be_in_viewport(timeout=WAIT)
        expect(original).to_have_attribute("data-highlight", "true", timeout=WAIT)

        # Replying from the page: the composer says to whom, the message quotes it.
        original.hover()
        original.get_by_test_id("action-reply").click()
        expect(bob.get_by_test_id("replying")).to_contain_text("Replying to carol: the original question")
        say(bob, "me too")
        mine = bob.locator("[data-testid=message][data-author=bob]").last
        expect(mine.get_by_test_id("reply-quote")).to_have_text("carol: the original question", timeout=WAIT)
        expect(bob.get_by_test_id("replying")).to_have_count(0)


def test_a_mention_raises_a_notification_while_the_tab_is_hidden(server, browser):
    with person(browser, server, "alice") as (alice, _), \
            person(browser, server, "bob", HIDDEN_AND_NOTIFIED) as (bob, _):
        # The composer completes @handles from the room's members.
        expect(alice.get_by_test_id("online-user")).to_have_count(2, timeout=WAIT)
        composer = alice.get_by_test_id("composer")
        composer.fill("")
        composer.type("hey @bo")
        option = alice.locator('[data-testid=mention-option][data-user="bob"]')
        expect(option).to_be_visible(timeout=WAIT)
        composer.press("Tab")
        expect(composer).to_have_value("hey @bob ")
        composer.type("look at this")
        composer.press("Enter")

        expect(row(bob, 1)).to_have_attribute("data-mention", "true", timeout=WAIT)
        bob.wait_for_function("window.__notes.length > 0", timeout=WAIT)
        notes = bob.evaluate("window.__notes")
        assert len(notes) == 1, notes
        assert "alice" in notes[0]["title"] and notes[0]["body"] == "hey @bob look at this"
        # Hidden, bob has not read it: the title counts it.
        expect(bob).to_have_title("(1) #general — Chat", timeout=WAIT)
        # A message without a mention in a public room raises none.
        say(alice, "no mention")
        expect(text_of(bob, 2)).to_have_text("no mention", timeout=WAIT)
        assert len(bob.evaluate("window.__notes")) == 1
        expect(bob).to_have_title("(2) #general — Chat", timeout=WAIT)
        # Alice's page is visible and read: no count.
        expect(alice).to_have_title("#general — Chat")


def test_unread_counts_survive_a_reload_and_mark_all_read_clears_them(server, browser):
    with person(browser, server, "alice") as (alice, alice_token), \
            person(browser, server, "bob") as (bob, bob_token):
        status, side = http_json("POST", server.base + "/api/rooms", {"name": "side"}, alice_token)
        assert status == 201, side
        status, _ = http_json("POST", f"{server.base}/api/rooms/{side['id']}/join", None, bob_token)
        assert status == 200
        bob.reload()
        online(bob)
        item = bob.locator('[data-testid=room-item][data-room="side"]')
        expect(item).to_have_attribute("data-joined", "true", timeout=WAIT)

        post(server, alice_token, side["id"], "one")
        post(server, alice_token, side["id"], "two @bob")
        expect(item.get_by_test_id("room-unread")).to_have_text("2", timeout=WAIT)
        expect(item.get_by_test_id("room-mentions")).to_have_text("@1", timeout=WAIT)
        expect(bob).to_have_title("(2) #general — Chat", timeout=WAIT)

        bob.reload()
        online(bob)
        expect(item.get_by_test_id("room-unread")).to_have_text("2", timeout=WAIT)

        bob.get_by_test_id("mark-all-read").click()
        expect(item.get_by_test_id("room-unread")).to_have_count(0, timeout=WAIT)
        bob.reload()
        online(bob)
        expect(item).to_be_visible(timeout=WAIT)
        expect(item.get_by_test_id("room-unread")).to_have_count(0)

        # Opening a room with unread messages shows where they start, and reads them.
        post(server, alice_token, side["id"], "three")
        expect(item.get_by_test_id("room-unread")).to_have_text("1", timeout=WAIT)
        item.click()
        expect(bob.get_by_test_id("unread-divider")).to_have_count(1, timeout=WAIT)
        expect(item.get_by_test_id("room-unread")).to_have_count(0, timeout=WAIT)
        bob.reload()
        online(bob)
        expect(bob.locator('[data-testid=room-item][data-room="side"]')).to_be_visible(timeout=WAIT)
        expect(item.get_by_test_id("room-unread")).to_have_count(0)


def test_new_messages_below_appear_while_scrolled_up(server, browser):
    token = register(server, "carol")
    http_json("POST", server.base + "/api/rooms/1/join", None, token)
    for n in range(40):
        post(server, token, 1, f"line {n}\nmore\nand more", n)
    with person(browser, server, "bob") as (bob, _):
        expect(bob.locator("[data-testid=message]")).to_have_count(40, timeout=WAIT)
        bob.get_by_test_id("message-list").evaluate("el => { el.scrollTop = 0; }")
        # Scrolled away from the newest messages: "Jump to latest" is offered at once.
        expect(bob.get_by_test_id("jump-latest")).to_be_visible(timeout=WAIT)
        bob.wait_for_timeout(300)
        post(server, token, 1, "while you were reading", 99)
        bar = bob.get_by_test_id("new-below")
        expect(bar).to_be_visible(timeout=WAIT)
        # Not seen yet: unread here too, as on the server.
        item = bob.locator('[data-testid=room-item][data-room="general"]')
        expect(item.get_by_test_id("room-unread")).to_have_text("1", timeout=WAIT)
        expect(bob).to_have_title(re.compile(r"^\(1\) "), timeout=WAIT)
        bob.get_by_test_id("jump-latest").click()
        expect(bar).to_have_count(0, timeout=WAIT)
        expect(bob.locator("[data-testid=message]").last).to_be_in_viewport(timeout=WAIT)
        expect(item.get_by_test_id("room-unread")).to_have_count(0, timeout=WAIT)
        # Seen, and the server agrees after a reload.
        bob.reload()
        expect(bob.locator("[data-testid=message]").last).to_be_visible(timeout=WAIT)
        expect(item).to_be_visible(timeout=WAIT)
        expect(item.get_by_test_id("room-unread")).to_have_count(0)
