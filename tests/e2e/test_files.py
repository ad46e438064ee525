"""Files and search in a real (headless) Chromium against the real server: an image dropped on
the room uploads with a progress bar and shows on the other side as a thumbnail whose box is
reserved before it loads, and opens full size in the viewer (or, with Ctrl, in a new tab);
another file shows its name and size and downloads; a refused upload says why (in English and
in Chinese); a Chinese search finds a message far back in another room and jumps to it (a
window of the history around it, read on down, then back to the latest).

Test images are written here (a PNG is a few zlib-compressed rows in chunks), so no image
library is needed.
"""

import base64
import contextlib
import re
import struct
import time
import urllib.request
import zlib

import pytest
from playwright.sync_api import expect

from conftest import WAIT, Server, http_json, online

PASSWORD = "a long password"


def png(width, height, rgb=(200, 40, 40)):
    """A PNG of one colour."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


def register(server, name):
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": name, "password": PASSWORD})
    assert status == 201, session
    return session["token"]


@contextlib.contextmanager
def person(browser, server, name, lang=None):
    """A logged-in person on the chat screen (in `lang` if given), and their token."""
    token = register(server, name)
    # Playwright's `route` does not see requests that a service worker handles, and the app's
    # worker takes control of the page at a moment of its own: the tests that hold requests
    # (uploads, thumbnails) would race it. Nothing here is about the worker (test_offline.py is).
    ctx = browser.new_context(accept_downloads=True, service_workers="block")
    try:
        if lang:
            ctx.add_init_script(f"localStorage.setItem('chat.lang', '{lang}')")
        ctx.add_cookies([{"name": "chat_session", "value": token, "url": server.base}])
        page = ctx.new_page()
        page.goto(server.base + "/")
        expect(page.get_by_test_id("room-title")).to_have_text("#general", timeout=WAIT)
        online(page)
        yield page, token
    finally:
        ctx.close()


def post(server, token, room, text, n=0, attachments=None):
    """Posts a message over HTTP, waiting out rate limits; returns its seq."""
    body = {"client_id": f"e2e-{room}-{n}-{time.monotonic_ns()}", "text": text}
    if attachments:
        body["attachments"] = attachments
    deadline = time.monotonic() + 60
    while True:
        status, res = http_json("POST", f"{server.base}/api/rooms/{room}/messages", body, token)
        if status == 429 and time.monotonic() < deadline:
            time.sleep(res.get("retry_after_ms", 500) / 1000)
            continue
        assert status in (200, 201), (status, res)
        return res["seq"]


def upload(server, token, room, name, data):
    """Uploads a file over HTTP; returns the server's answer."""
    from urllib.parse import quote
    req = urllib.request.Request(f"{server.base}/api/rooms/{room}/files?name={quote(name)}",
                                 data=data, method="POST",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as res:
        import json
        return json.loads(res.read())


DROP = """async ([b64, name, type]) => {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, {type}));
    const on = document.querySelector('[data-testid=message-list]');
    for (const kind of ['dragenter', 'dragover', 'drop']) {
        on.dispatchEvent(new DragEvent(kind, {dataTransfer: dt, bubbles: true, cancelable: true}));
    }
}"""


def drop(page, name, data, mime):
    page.evaluate(DROP, [base64.b64encode(data).decode(), name, mime])


def test_a_dropped_image_uploads_with_progress_and_shows_to_the_other_person(server, browser):
    with person(browser, server, "alice") as (alice, _), \
            person(browser, server, "bob") as (bob, _):
        # Uploads wait until the test lets them through, so that the chip can be seen sending.
        held = []
        alice.route("**/api/rooms/*/files?*", lambda route: held.append(route))
        # Bob's thumbnails wait too: the box must be there before the image.
        thumbs = []
        bob.route("**/api/files/*/thumbnail", lambda route: thumbs.append(route))

        image = png(640, 480)
        drop(alice, "猫.png", image, "image/png")
        chip = alice.get_by_test_id("upload")
        expect(chip).to_have_attribute("data-state", "sending", timeout=WAIT)
        expect(chip).to_have_attribute("data-name", "猫.png")
        bar = chip.get_by_test_id("upload-progress")
        expect(bar).to_have_attribute("aria-label", "Uploading 猫.png")
        expect(chip.get_by_role("progressbar")).to_be_visible()

        # A second file, cancelled while it uploads, is gone.
        drop(alice, "other.png", png(8, 8), "image/png")
        expect(alice.get_by_test_id("upload")).to_have_count(2, timeout=WAIT)
        alice.locator('[data-testid=upload][data-name="other.png"]').get_by_test_id("upload-cancel").click()
        expect(alice.get_by_test_id("upload")).to_have_count(1)

        # Sending while it uploads waits for it.
        alice.get_by_test_id("composer").fill("a cat")
        alice.get_by_test_id("composer").press("Enter")
        expect(alice.get_by_test_id("upload-waiting")).to_be_visible(timeout=WAIT)
        expect(alice.get_by_test_id("message")).to_have_count(0)
        deadline = time.monotonic() + 10
        while not held and time.monotonic() < deadline:
            alice.wait_for_timeout(50)
        for route in held:
            with contextlib.suppress(Exception):
                route.continue_()
        mine = alice.locator("[data-testid=message][data-author=alice]")
        expect(mine).to_have_count(1, timeout=WAIT)
        expect(mine).to_have_attribute("data-state", "sent", timeout=WAIT)
        expect(mine.get_by_test_id("message-text")).to_contain_text("a cat")
        expect(mine.get_by_test_id("attachment-image")).to_have_count(1)
        expect(alice.get_by_test_id("upload")).to_have_count(0)
        expect(alice.get_by_test_id("upload-waiting")).to_have_count(0)

        # Bob: the box is 320 x 240 (640 x 480 scaled down) before the thumbnail loads.
        theirs = bob.locator("[data-testid=message][data-author=alice]")
        link = theirs.get_by_test_id("attachment-image")
        expect(link).to_have_count(1, timeout=WAIT)
        img = link.locator("img")
        expect(img).to_have_attribute("alt", "猫.png")
        assert img.evaluate("i => i.naturalWidth") == 0
        box = img.bounding_box()
        assert (round(box["width"]), round(box["height"])) == (320, 240), box
        deadline = time.monotonic() + 10
        while not thumbs and time.monotonic() < deadline:
            bob.wait_for_timeout(50)
        for route in thumbs:
            route.continue_()
        bob.wait_for_function(
            "() => document.querySelector('[data-testid=attachment-image] img').naturalWidth > 0",
            timeout=WAIT)
        box = img.bounding_box()
        assert (round(box["width"]), round(box["height"])) == (320, 240), box

        # Full size in the viewer, from the keyboard; Escape gives the focus back.
        link.focus()
        bob.keyboard.press("Enter")
        viewer = bob.get_by_test_id("image-viewer")
        expect(viewer).to_be_visible(timeout=WAIT)
        expect(viewer).to_have_attribute("aria-label", "猫.png")
        expect(bob.get_by_test_id("viewer-close")).to_be_focused()
        bob.wait_for_function(
            "() => document.querySelector('[data-testid=viewer-image]').naturalWidth === 640",
            timeout=WAIT)
        bob.keyboard.press("Tab")
        expect(bob.get_by_test_id("viewer-open")).to_be_focused()
        bob.keyboard.press("Tab")
        expect(bob.get_by_test_id("viewer-close")).to_be_focused()
        bob.keyboard.press("Escape")
        expect(viewer).to_have_count(0)
        expect(link).to_be_focused()
        # A click beside the image closes it too.
        link.click()
        expect(viewer).to_be_visible(timeout=WAIT)
        bob.mouse.click(5, 5)
        expect(viewer).to_have_count(0)

        # With Ctrl, the link opens the image in a new tab, as links do.
        with bob.context.expect_page(timeout=WAIT) as opened:
            link.click(modifiers=["Control"])
        full = opened.value
        full.wait_for_load_state()
        assert full.url.endswith("/api/files/" + link.get_attribute("data-file-id"))
        size = full.evaluate("() => [document.images[0].naturalWidth, document.images[0].naturalHeight]")
        assert size == [640, 480]


def test_a_file_still_uploading_at_a_reload_is_named_to_be_attached_again(server, browser):
    with person(browser, server, "alice") as (alice, _):
        alice.route("**/api/rooms/*/files?*", lambda route: None)  # never answered
        drop(alice, "猫.png", png(64, 48), "image/png")
        expect(alice.get_by_test_id("upload")).to_have_attribute("data-state", "sending",
                                                                  timeout=WAIT)
        alice.reload()
        online(alice)
        lost = alice.get_by_test_id("files-lost")
        expect(lost).to_contain_text("猫.png", timeout=WAIT)
        expect(lost).to_contain_text("Attach them again")
        expect(alice.get_by_test_id("upload")).to_have_count(0)
        lost.get_by_test_id("files-lost-dismiss").click()
        expect(lost).to_have_count(0)
        alice.reload()
        online(alice)
        expect(alice.get_by_test_id("composer")).to_be_visible()
        alice.wait_for_timeout(300)
        expect(alice.get_by_test_id("files-lost")).to_have_count(0)


def test_another_file_shows_its_name_and_size_and_downloads(server, browser):
    data = b"line of notes\n" * 200  # 2,800 bytes
    with person(browser, server, "alice") as (alice, _), \
            person(browser, server, "bob") as (bob, _):
        alice.get_by_test_id("file-input").set_input_files(
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": data}])
        chip = alice.get_by_test_id("upload")
        expect(chip).to_have_attribute("data-state", "done", timeout=WAIT)
        expect(chip).to_contain_text("2.7 KB")
        alice.get_by_test_id("send-button").click()
        theirs = bob.locator("[data-testid=message][data-author=alice]")
        file = theirs.get_by_test_id("attachment-file")
        expect(file).to_have_count(1, timeout=WAIT)
        expect(file).to_contain_text("notes.txt")
        expect(file.get_by_test_id("attachment-size")).to_have_text("2.7 KB")
        with bob.expect_download(timeout=WAIT) as got:
            file.click()
        download = got.value
        assert download.suggested_filename == "notes.txt"
        with open(download.path(), "rb") as f:
            assert f.read() == data


@pytest.fixture
def small_server(tmp_path):
    srv = Server(tmp_path, ["--max-upload-bytes", "1000"])
    yield srv
    srv.stop()
    srv.log.close()


def test_an_upload_the_server_refuses_says_why_and_the_message_waits(small_server, browser):
    server = small_server
    big = png(200, 200, (1, 2, 3)) + bytes(range(256)) * 20  # over 1,000 bytes
    with person(browser, server, "alice") as (alice, _), \
            person(browser, server, "wang", lang="zh-CN") as (wang, _):
        alice.get_by_test_id("file-input").set_input_files(
            files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": big}])
        chip = alice.get_by_test_id("upload")
        expect(chip).to_have_attribute("data-state", "failed", timeout=WAIT)
        expect(chip.get_by_test_id("upload-error")).to_have_text("A file is at most 1000 bytes (0 MiB).")
        # Sending again would fail again: no retry, only remove.
        expect(chip.get_by_test_id("upload-retry")).to_have_count(0)
        alice.get_by_test_id("composer").fill("with a file")
        alice.get_by_test_id("composer").press("Enter")
        expect(alice.get_by_test_id("composer-error")).to_have_text(
            "Some files were not uploaded: retry or remove them first.")
        expect(alice.get_by_test_id("message")).to_have_count(0)
        chip.get_by_test_id("upload-remove").click()
        expect(alice.get_by_test_id("upload")).to_have_count(0)
        alice.get_by_test_id("composer").press("Enter")
        expect(alice.locator("[data-testid=message][data-author=alice]")
               .get_by_test_id("message-text")).to_have_text("with a file", timeout=WAIT)

        # In Chinese, the refusal is in Chinese.
        wang.get_by_test_id("file-input").set_input_files(
            files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": big}])
        expect(wang.get_by_test_id("upload-error")).to_have_text("文件超过了服务器允许的大小。",
                                                                 timeout=WAIT)


def search_server(tmp_path):
    return Server(tmp_path, ["--sends-per-second", "1000", "--requests-per-second", "1000"])


@pytest.fixture
def fast_server(tmp_path):
    srv = search_server(tmp_path)
    yield srv
    srv.stop()
    srv.log.close()


def test_a_chinese_search_finds_a_message_far_back_in_another_room_and_jumps_to_it(
        fast_server, browser):
    server = fast_server
    zhang = register(server, "zhang")
    status, side = http_json("POST", server.base + "/api/rooms", {"name": "side"}, zhang)
    assert status == 201, side
    found = post(server, zhang, side["id"], "你好世界")
    post(server, zhang, side["id"], "hello world")
    # Far back: more than the few pages the list loads to reach a message, so a window of the
    # history around it opens instead.
    for n in range(400):
        post(server, zhang, side["id"], f"filler {n}", n)
    with person(browser, server, "bob") as (bob, bob_token):
        status, _ = http_json("POST", f"{server.base}/api/rooms/{side['id']}/join", None, bob_token)
        assert status in (200, 201, 204), status
        bob.keyboard.press("Control+Shift+F")
        dialog = bob.get_by_test_id("search")
        expect(dialog).to_be_visible(timeout=WAIT)
        expect(dialog).to_have_attribute("role", "dialog")
        expect(bob.get_by_test_id("search-input")).to_be_focused(timeout=WAIT)

        # Only in #general: nothing.
        bob.get_by_test_id("search-this-room").check()
        bob.get_by_test_id("search-input").fill("世界")
        bob.keyboard.press("Enter")
        expect(bob.get_by_test_id("search-status")).to_have_text("No messages found.", timeout=WAIT)

        # Every room: the message, with its room and author.
        bob.get_by_test_id("search-this-room").uncheck()
        bob.get_by_test_id("search-input").press("Enter")
        hits = bob.get_by_test_id("search-result")
        expect(hits).to_have_count(1, timeout=WAIT)
        expect(hits.first).to_contain_text("你好世界")
        expect(hits.first).to_contain_text("#side")
        expect(hits.first).to_contain_text("zhang")
        assert hits.first.get_attribute("data-seq") == str(found)

        # Enter on the hit: the room opens at the message, in a window of the history around
        # it (the newest messages are not held above it).
        hits.first.focus()
        bob.keyboard.press("Enter")
        expect(dialog).to_have_count(0)
        expect(bob.get_by_test_id("room-title")).to_have_text("#side", timeout=WAIT)
        row = bob.locator(f'[data-testid=message][data-seq="{found}"]')
        expect(row).to_be_in_viewport(timeout=WAIT)
        expect(row).to_have_attribute("data-highlight", "true", timeout=WAIT)
        expect(row).to_be_focused()
        expect(row.get_by_test_id("message-text")).to_have_text("你好世界")
        expect(bob.get_by_test_id("window-bar")).to_be_visible()
        expect(bob.get_by_test_id("history-start")).to_be_attached()
        def text_row(text):
            return bob.get_by_test_id("message-text").filter(has_text=re.compile(f"^{text}$"))

        newest = text_row("filler 399")
        expect(newest).to_have_count(0)
        # Reading down loads what follows, page by page.
        later = text_row("filler 120")
        for _ in range(20):
            bob.get_by_test_id("message-list").evaluate("el => el.scrollTop = el.scrollHeight")
            if later.count():
                break
            bob.wait_for_timeout(250)
        expect(later).to_have_count(1)
        expect(newest).to_have_count(0)
        # Another far result while the window is open: a window around that one.
        bob.keyboard.press("Control+Shift+F")
        bob.get_by_test_id("search-input").fill("filler 350")
        bob.keyboard.press("Enter")
        expect(hits.first).to_contain_text("filler 350", timeout=WAIT)
        hits.first.click()
        expect(text_row("filler 350")).to_be_in_viewport(timeout=WAIT)
        expect(bob.get_by_test_id("window-bar")).to_be_visible()
        expect(later).to_have_count(0)
        texts = bob.get_by_test_id("message-text")
        # A new message meanwhile is not shown in the window; "Jump to latest" goes to it.
        post(server, zhang, side["id"], "the newest", 1000)
        bob.get_by_test_id("jump-latest").click()
        expect(bob.get_by_test_id("window-bar")).to_have_count(0)
        expect(texts.last).to_have_text("the newest", timeout=WAIT)
        expect(texts.last).to_be_in_viewport()


def test_search_pages_with_more_results_and_filters_files(fast_server, browser):
    server = fast_server
    zhang = register(server, "zhang")
    http_json("POST", server.base + "/api/rooms/1/join", None, zhang)
    for n in range(25):
        post(server, zhang, 1, f"release notes {n}", n)
    done = upload(server, zhang, 1, "notes.txt", b"the notes")
    post(server, zhang, 1, "release notes with the file", 99, attachments=[done["id"]])
    with person(browser, server, "bob") as (bob, _):
        bob.get_by_test_id("search-open").click()
        bob.get_by_test_id("search-input").fill("release notes")
        bob.keyboard.press("Enter")
        hits = bob.get_by_test_id("search-result")
        expect(hits).to_have_count(20, timeout=WAIT)
        bob.get_by_test_id("search-more").click()
        expect(hits).to_have_count(26, timeout=WAIT)
        expect(bob.get_by_test_id("search-more")).to_have_count(0)
        bob.get_by_test_id("search-has-file").check()
        bob.get_by_test_id("search-input").press("Enter")
        expect(hits).to_have_count(1, timeout=WAIT)
        expect(hits.first).to_contain_text("release notes with the file")
        # A day range: from tomorrow finds nothing; until today finds the message again.
        today = bob.evaluate(
            "(() => { const d = new Date(); return d.getFullYear() + '-' +"
            " String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0'); })()")
        tomorrow = bob.evaluate(
            "(() => { const d = new Date(); d.setDate(d.getDate() + 1); return d.getFullYear() + '-' +"
            " String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0'); })()")
        bob.get_by_test_id("search-after").fill(tomorrow)
        bob.get_by_test_id("search-input").press("Enter")
        expect(bob.get_by_test_id("search-status")).to_have_text("No messages found.", timeout=WAIT)
        bob.get_by_test_id("search-after").fill("")
        bob.get_by_test_id("search-before").fill(today)
        bob.get_by_test_id("search-input").press("Enter")
        expect(hits).to_have_count(1, timeout=WAIT)
        # Escape closes, and the focus goes back to the button.
        bob.keyboard.press("Escape")
        expect(bob.get_by_test_id("search")).to_have_count(0)
        expect(bob.get_by_test_id("search-open")).to_be_focused()
