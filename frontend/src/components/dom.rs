//! Plain DOM for views that Leptos would compile into much more code than they are worth
//! (the message rows, the member panel): elements built with `web_sys`, events handled by one
//! delegated handler per view, and [`Slot`]s where a piece comes and goes.

use std::cell::RefCell;

use leptos::prelude::document;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::components::Stored;

/// An event listener added by [`on`]: removed from its target (and its closure freed) when it
/// is dropped, that is when the owner it was added under is cleaned up.
struct Listener {
    target: web_sys::EventTarget,
    name: &'static str,
    f: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.name, self.f.as_ref().unchecked_ref());
    }
}

/// Listens to `name` events on `target` (an element, the window) for as long as the current
/// reactive owner lives: one closure type for every handler, so the code that attaches one
/// exists once.
pub(crate) fn on(
    target: &web_sys::EventTarget,
    name: &'static str,
    f: impl FnMut(web_sys::Event) + 'static,
) {
    listen(target, name, Box::new(f));
}

/// The body of [`on`], out of line: at each of the many call sites only the handler is boxed.
#[inline(never)]
fn listen(target: &web_sys::EventTarget, name: &'static str, f: Box<dyn FnMut(web_sys::Event)>) {
    let f = Closure::wrap(f);
    let _ = target.add_event_listener_with_callback(name, f.as_ref().unchecked_ref());
    Stored::new(Listener {
        target: target.clone(),
        name,
        f,
    });
}

/// Runs `f` once, `ms` milliseconds from now (0: after the current task and rendering): one
/// closure type for every caller, so the timer's code exists once.
pub(crate) fn after(ms: u32, f: impl FnOnce() + 'static) {
    after_boxed(ms, Box::new(f));
}

#[inline(never)]
fn after_boxed(ms: u32, f: Box<dyn FnOnce()>) {
    gloo_timers::callback::Timeout::new(ms, f).forget();
}

/// The key of a keyboard event (empty for any other event).
pub(crate) fn key_of(ev: &web_sys::Event) -> String {
    ev.dyn_ref::<web_sys::KeyboardEvent>()
        .map(web_sys::KeyboardEvent::key)
        .unwrap_or_default()
}

/// Whether Shift was held, or an input method is composing, during a keyboard event.
pub(crate) fn shift_or_composing(ev: &web_sys::Event) -> (bool, bool) {
    ev.dyn_ref::<web_sys::KeyboardEvent>()
        .map(|k| (k.shift_key(), k.is_composing()))
        .unwrap_or_default()
}

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
    // (Not `expect`: that would compile `JsValue`'s `Debug` into the bundle.)
    let Ok(el) = document().create_element(tag) else {
        unreachable!("creating an element cannot fail")
    };
    if !class.is_empty() {
        el.set_class_name(class);
    }
    el
}

/// A new element: `tag`, with `class` (if any), appended to `parent`.
pub(crate) fn el(parent: &web_sys::Node, tag: &str, class: &str) -> web_sys::Element {
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

/// An element with a class and a test id, appended to `parent`.
pub(crate) fn el_with(
    parent: &web_sys::Node,
    tag: &str,
    class: &str,
    testid: &str,
) -> web_sys::Element {
    let e = el(parent, tag, class);
    attrs(&e, &[("data-testid", testid)]);
    e
}

/// A button with a class, a test id and a label, appended to `parent` (delegated handlers act
/// by its test id).
pub(crate) fn button(
    parent: &web_sys::Node,
    class: &str,
    testid: &str,
    label: &str,
) -> web_sys::Element {
    let e = el_with(parent, "button", class, testid);
    text(&e, label);
    e
}

/// Sets or removes a boolean attribute.
pub(crate) fn flag(e: &web_sys::Element, name: &str, on: bool) {
    if on {
        let _ = e.set_attribute(name, "");
    } else {
        let _ = e.remove_attribute(name);
    }
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

/// A place in a parent node where elements may come and go, marked by an empty text node so
/// that it keeps its position among its siblings (which may come and go too).
pub(crate) struct Slot {
    anchor: web_sys::Node,
    current: RefCell<Vec<web_sys::Node>>,
}

impl Slot {
    /// A new, empty place at the end of `parent`.
    pub(crate) fn new(parent: &web_sys::Node) -> Self {
        let anchor: web_sys::Node = document().create_text_node("").into();
        let _ = parent.append_child(&anchor);
        Slot {
            anchor,
            current: RefCell::new(Vec::new()),
        }
    }

    /// Shows `nodes` in this place instead of what was there.
    pub(crate) fn set_all(&self, nodes: Vec<web_sys::Node>) {
        for old in self.current.borrow_mut().drain(..) {
            if let Some(parent) = old.parent_node() {
                let _ = parent.remove_child(&old);
            }
        }
        if let Some(parent) = self.anchor.parent_node() {
            for n in &nodes {
                let _ = parent.insert_before(n, Some(&self.anchor));
            }
        }
        *self.current.borrow_mut() = nodes;
    }

    /// Shows `el` in this place instead of what was there (nothing for `None`).
    pub(crate) fn set(&self, el: Option<web_sys::Element>) {
        self.set_all(el.into_iter().map(Into::into).collect());
    }

    /// Shows what was built in `frag` in this place instead of what was there.
    pub(crate) fn set_fragment(&self, frag: &web_sys::DocumentFragment) {
        let list = frag.child_nodes();
        self.set_all((0..list.length()).filter_map(|i| list.item(i)).collect());
    }

    /// Shows a line of text while there is one (see [`line`]).
    pub(crate) fn text_line(&self, class: &str, testid: &str, role: &str, s: Option<&str>) {
        self.set(s.map(|s| line("p", class, testid, role, s)));
    }
}
