//! The Markdown renderer in a real browser: hostile input never becomes live markup.
#![cfg(target_arch = "wasm32")]

use frontend::markdown;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Renders `src` into a fresh element and returns it.
fn rendered(src: &str) -> web_sys::Element {
    let doc = web_sys::window()
        .and_then(|w| w.document())
        .expect("a document");
    let host = doc.create_element("div").expect("div");
    markdown::render(&host, &markdown::parse(src));
    host
}

fn count(host: &web_sys::Element, selector: &str) -> u32 {
    host.query_selector_all(selector)
        .expect("selector")
        .length()
}

#[wasm_bindgen_test]
fn script_tags_and_event_handlers_are_shown_as_text() {
    let src = "<script>window.pwned = 1</script> <img src=x onerror=\"window.pwned = 2\"> \
               <a href=\"javascript:alert(1)\">x</a> <iframe src=https://evil.example>";
    let host = rendered(src);
    for tag in ["script", "img", "iframe"] {
        assert_eq!(count(&host, tag), 0, "no <{tag}> element from the text");
    }
    // The one link is the plain address in the iframe's `src`, made a safe link.
    let a = host.query_selector("a").expect("query").expect("a link");
    assert_eq!(
        a.get_attribute("href").as_deref(),
        Some("https://evil.example")
    );
    assert_eq!(
        a.get_attribute("rel").as_deref(),
        Some("noopener noreferrer")
    );
    assert_eq!(host.text_content().unwrap_or_default(), src);
    assert!(count(&host, "[onerror]") == 0);
}

#[wasm_bindgen_test]
fn only_http_https_and_mailto_links_become_links_opening_safely() {
    let host = rendered(
        "[ok](https://example.org) [mail](mailto:a@b.org) [bad](javascript:alert(1)) \
         [data](data:text/html;base64,PHNjcmlwdD4=) http://plain.example/path.",
    );
    let links = host.query_selector_all("a").expect("links");
    assert_eq!(links.length(), 3);
    for i in 0..links.length() {
        let a: web_sys::Element =
            wasm_bindgen::JsCast::dyn_into(links.get(i).expect("node")).expect("an element");
        let href = a.get_attribute("href").unwrap_or_default();
        assert!(
            href.starts_with("https://")
                || href.starts_with("http://")
                || href.starts_with("mailto:"),
            "{href}"
        );
        assert_eq!(
            a.get_attribute("rel").as_deref(),
            Some("noopener noreferrer")
        );
        assert_eq!(a.get_attribute("target").as_deref(), Some("_blank"));
    }
    let text = host.text_content().unwrap_or_default();
    assert!(
        text.contains("[bad](javascript:alert(1))"),
        "shown as typed: {text}"
    );
}

#[wasm_bindgen_test]
fn nested_emphasis_renders_as_nested_elements() {
    let host = rendered("**bold *and em* ~~gone~~** `co*de*`");
    assert_eq!(count(&host, "strong em"), 1);
    assert_eq!(count(&host, "strong del"), 1);
    assert_eq!(count(&host, "code em"), 0, "nothing is parsed inside code");
    let code = host.query_selector("code").expect("query").expect("code");
    assert_eq!(code.text_content().as_deref(), Some("co*de*"));
}

#[wasm_bindgen_test]
fn a_long_code_block_and_deep_nesting_render_without_trouble() {
    let body = "let x = 1; // <b>not bold</b>\n".repeat(140);
    let body = body.trim_end();
    assert!(body.len() > 4_000);
    let host = rendered(&format!("```\n{body}\n```"));
    let code = host
        .query_selector("pre code")
        .expect("query")
        .expect("code block");
    assert_eq!(code.text_content().as_deref(), Some(body));
    assert_eq!(count(&host, "b"), 0);
    // Quotes nested thousands deep stop at the bound and show the rest as text.
    let host = rendered(&(">".repeat(3_000) + " deep"));
    assert_eq!(count(&host, "blockquote"), markdown::MAX_DEPTH as u32);
}
