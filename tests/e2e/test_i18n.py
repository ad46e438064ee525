"""Two languages: the app in Simplified Chinese from the browser's language, switched to English
in the settings and back (the choice survives a reload), with times, day dividers and the
server's refusals in the person's language."""

from playwright.sync_api import expect

from conftest import WAIT, http_json, online, say

PASSWORD = "a long password"


def test_the_app_speaks_chinese_from_the_browser_and_switches_to_english_and_back(server, browser):
    ctx = browser.new_context(locale="zh-CN")
    try:
        page = ctx.new_page()
        page.goto(server.base + "/")
        expect(page.get_by_test_id("login-button")).to_have_text("登录", timeout=WAIT)
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

        # A refusal from the server is shown in the person's language (by its code).
        page.get_by_test_id("username-input").fill("nobody")
        page.get_by_test_id("password-input").fill("not the password")
        page.get_by_test_id("login-button").click()
        expect(page.get_by_test_id("auth-error")).to_have_text("用户名或密码错误。", timeout=WAIT)

        page.get_by_test_id("username-input").fill("ada")
        page.get_by_test_id("password-input").fill(PASSWORD)
        page.get_by_test_id("register-button").click()
        online(page)
        expect(page.get_by_test_id("composer")).to_have_attribute("placeholder", "发消息到 #general")
        say(page, "你好，世界")
        expect(page.get_by_test_id("message")).to_have_count(1, timeout=WAIT)
        expect(page.get_by_test_id("day-divider")).to_have_text("今天")

        page.get_by_test_id("settings-open").click()
        page.get_by_test_id("settings-language").select_option("en")
        # The page reloads in English.
        expect(page.get_by_test_id("logout-button")).to_have_text("Log out", timeout=WAIT)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_test_id("day-divider")).to_have_text("Today", timeout=WAIT)
        page.reload()
        expect(page.get_by_test_id("logout-button")).to_have_text("Log out", timeout=WAIT)

        page.get_by_test_id("settings-open").click()
        page.get_by_test_id("settings-language").select_option("zh-CN")
        expect(page.get_by_test_id("logout-button")).to_have_text("退出登录", timeout=WAIT)
        expect(page.get_by_test_id("message-text")).to_have_text("你好，世界")
    finally:
        ctx.close()


def test_the_theme_can_be_chosen_in_the_app_beside_the_system_setting(server, browser):
    status, session = http_json("POST", server.base + "/api/register",
                                {"username": "bob", "password": PASSWORD})
    assert status == 201, session
    ctx = browser.new_context(color_scheme="light")
    try:
        ctx.add_cookies([{"name": "chat_session", "value": session["token"], "url": server.base}])
        page = ctx.new_page()
        page.goto(server.base + "/")
        online(page)
        background = "getComputedStyle(document.documentElement).backgroundColor"
        light = page.evaluate(background)
        page.get_by_test_id("settings-open").click()
        page.get_by_test_id("settings-theme").select_option("dark")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        assert page.evaluate(background) != light
        page.reload()
        online(page)
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        page.get_by_test_id("settings-open").click()
        page.get_by_test_id("settings-theme").select_option("system")
        expect(page.locator("html")).not_to_have_attribute("data-theme", "dark")
        assert page.evaluate(background) == light
    finally:
        ctx.close()
