//! Plain DOM for views that Leptos would compile into much more code than they are worth
//! (the message rows, the member panel): elements built with `web_sys`, events handled by one
//! delegated handler per view, and [`Slot`]s where a piece comes and goes.

use std::cell::RefCell;

use leptos::prelude::document;
use wasm_bindgen::{JsCast, JsValue};

/// The element an event happened in (or its closest ancestor) matching `selector`.
pub(crate) fn target(ev: &web_sys::Event, selector: &str) -> Option<web_sys::Element> {
    ev.target()?
        .dyn_into::<web_sys::Element>()
        .ok()?
        .closest(selector)
        .ok()
        .flatten()
}

/// The element with a test id that an event happened in (or its closest such ancestor), with
/// that id: what a delegated handler acts on.
pub(crate) fn tested(ev: &web_sys::Event) -> Option<(web_sys::Element, String)> {
    let el = target(ev, "[data-testid]")?;
    let id = el.get_attribute("data-testid")?;
    Some((el, id))
}

/// A new element, not yet in the document: `tag`, with `class` (if any).
pub(crate) fn new_el(tag: &str, class: &str) -> web_sys::Element {
    let el = document()
        .create_element(tag)
        .expect("creating an element cannot fail");
    if !class.is_empty() {
        el.set_class_name(class);
    }
    el
}

/// A new element: `tag`, with `class` (if any), appended to `parent`.
pub(crate) fn el(parent: &web_sys::Element, tag: &str, class: &str) -> web_sys::Element {
    let el = new_el(tag, class);
    let _ = parent.append_child(&el);
    el
}

/// Sets attributes.
pub(crate) fn attrs(el: &web_sys::Element, pairs: &[(&str, &str)]) {
    for (name, value) in pairs {
        let _ = el.set_attribute(name, value);
    }
}

/// Appends a text node.
pub(crate) fn text(el: &web_sys::Element, s: &str) {
    let _ = el.append_with_str_1(s);
}

/// The `value` of a form field (input, select, textarea); empty for anything else.
pub(crate) fn value_of(el: &web_sys::Element) -> String {
    js_sys::Reflect::get(el, &JsValue::from_str("value"))
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// Sets the `value` of a form field (the property, as typing would, not the attribute).
pub(crate) fn set_value(el: &web_sys::Element, value: &str) {
    let _ = js_sys::Reflect::set(el, &JsValue::from_str("value"), &JsValue::from_str(value));
}

/// A paragraph (or other `tag`) with a class, a test id, a role (if any) and a text: the error
/// and note lines under forms.
pub(crate) fn line(tag: &str, class: &str, testid: &str, role: &str, s: &str) -> web_sys::Element {
    let p = new_el(tag, class);
    if !testid.is_empty() {
        attrs(&p, &[("data-testid", testid)]);
    }
    if !role.is_empty() {
        attrs(&p, &[("role", role)]);
    }
    text(&p, s);
    p
}

/// A place in a parent element where one element may come and go, marked by an empty text node
/// so that it keeps its position among its siblings (which may come and go too).
pub(crate) struct Slot {
    anchor: web_sys::Node,
    current: RefCell<Option<web_sys::Element>>,
}

impl Slot {
    /// A new, empty place at the end of `parent`.
    pub(crate) fn new(parent: &web_sys::Element) -> Self {
        let anchor: web_sys::Node = document().create_text_node("").into();
        let _ = parent.append_child(&anchor);
        Slot {
            anchor,
            current: RefCell::new(None),
        }
    }

    /// Shows `el` in this place instead of what was there (nothing for `None`).
    pub(crate) fn set(&self, el: Option<web_sys::Element>) {
        if let Some(old) = self.current.borrow_mut().take() {
            old.remove();
        }
        if let (Some(el), Some(parent)) = (&el, self.anchor.parent_node()) {
            let _ = parent.insert_before(el, Some(&self.anchor));
        }
        *self.current.borrow_mut() = el;
    }

    /// Shows a line of text while there is one (see [`line`]).
    pub(crate) fn text_line(&self, class: &str, testid: &str, role: &str, s: Option<&str>) {
        self.set(s.map(|s| line("p", class, testid, role, s)));
    }
}
