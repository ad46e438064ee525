//! The image viewer: a message's image at full size over the page, opened by clicking its
//! thumbnail (a click with Ctrl, Shift or the middle button still opens it in a new tab, the
//! thumbnail being a link). Escape, the close button or a click beside the image closes it and
//! gives the focus back to the thumbnail; Tab stays inside it.
//!
//! Test ids: `image-viewer` (the dialog, labelled by the file's name), `viewer-image` (the full
//! image, its box reserved from the file's dimensions), `viewer-open` (the file in a new tab),
//! `viewer-close`.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::client::{Client, Viewed};
use crate::components::Stored;
use crate::components::dom::{attrs, el, key_of, new_el, on, text};
use crate::components::switcher::dialog_place;
use crate::i18n::t;
use crate::uploads;

/// The viewer's place in the page: empty until an image is opened.
pub(crate) fn image_viewer(client: Client) -> web_sys::Element {
    let host = new_el("div", "viewer-host");
    let before = Stored::new(None);
    let close = move || client.viewer_open.set(false);
    on(&host, "keydown", move |ev| match key_of(&ev).as_str() {
        "Escape" => {
            ev.prevent_default();
            close();
        }
        "Tab" => {
            // Two controls: Tab and Shift+Tab go from one to the other.
            ev.prevent_default();
            let next = if focused_is("viewer-close") {
                "viewer-open"
            } else {
                "viewer-close"
            };
            focus(next);
        }
        _ => {}
    });
    on(&host, "click", move |ev| {
        let inside = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|t| t.closest("img, a, figcaption").ok().flatten());
        if inside.is_none()
            || crate::components::dom::target(&ev, "[data-testid=viewer-close]").is_some()
        {
            close();
        }
    });
    dialog_place(&host, client.viewer_open, before, move |d| {
        if let Some(Some(v)) = client.viewed.try_get_value() {
            build(d, &v);
        }
        || focus("viewer-close")
    });
    host
}

fn focused_is(id: &str) -> bool {
    document()
        .active_element()
        .and_then(|e| e.get_attribute("data-testid"))
        .is_some_and(|t| t == id)
}

fn focus(id: &str) {
    if let Some(el) = document()
        .query_selector(&format!("[data-testid={id}]"))
        .ok()
        .flatten()
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}

fn build(host: &web_sys::Element, v: &Viewed) {
    el(host, "div", "dialog-backdrop");
    let dialog = el(host, "figure", "viewer");
    attrs(
        &dialog,
        &[
            ("role", "dialog"),
            ("aria-modal", "true"),
            ("aria-label", &v.name),
            ("data-testid", "image-viewer"),
        ],
    );
    let url = uploads::file_url(v.id);
    let img = el(&dialog, "img", "");
    attrs(
        &img,
        &[
            ("data-testid", "viewer-image"),
            ("src", &url),
            ("alt", &v.name),
            ("width", &v.width.to_string()),
            ("height", &v.height.to_string()),
        ],
    );
    let caption = el(&dialog, "figcaption", "");
    text(&el(&caption, "span", "viewer-name"), &v.name);
    let open = el(&caption, "a", "");
    attrs(
        &open,
        &[
            ("data-testid", "viewer-open"),
            ("href", &url),
            ("target", "_blank"),
            ("rel", "noopener noreferrer"),
        ],
    );
    text(&open, t().open_in_new_tab);
    let close = new_el("button", "link");
    attrs(
        &close,
        &[
            ("type", "button"),
            ("data-testid", "viewer-close"),
            ("aria-label", t().close_viewer),
            ("title", t().close_viewer),
        ],
    );
    text(&close, "×");
    let _ = caption.append_child(&close);
}
