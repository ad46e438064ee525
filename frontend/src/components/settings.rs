//! The person's settings: the language (the page reloads in it, see [`crate::i18n`]) and the
//! theme (the system's, light or dark; applied at once). Both are kept in `localStorage`.
//!
//! Test ids: `settings` (the dialog), `settings-language` (a select of language tags),
//! `settings-theme` (a select: `system`, `light`, `dark`), `settings-close`.

use leptos::prelude::*;

use crate::components::Stored;
use crate::components::Var;
use crate::components::dom::{Slot, attrs, el, key_of, new_el, on, target, text, value_of};
use crate::components::effect;
use crate::components::switcher::focus_soon;
use crate::i18n::{self, Lang, t};

/// The `localStorage` key of the theme chosen in the app.
pub const THEME_KEY: &str = "chat.theme";

/// A theme choice: the system's, or one forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    /// Follows `prefers-color-scheme`.
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

impl Theme {
    /// Every choice, in the order offered.
    pub const ALL: [Theme; 3] = [Theme::System, Theme::Light, Theme::Dark];

    /// The stored word (and the `data-theme` value, but for `system`, which sets none).
    pub fn word(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    /// The choice a stored word names (anything else: the system's).
    pub fn parse(word: &str) -> Theme {
        match word {
            "light" => Theme::Light,
            "dark" => Theme::Dark,
            _ => Theme::System,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Theme::System => t().theme_system,
            Theme::Light => t().theme_light,
            Theme::Dark => t().theme_dark,
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The theme chosen (the system's if none).
pub fn stored_theme() -> Theme {
    storage()
        .and_then(|s| s.get_item(THEME_KEY).ok().flatten())
        .map_or(Theme::System, |w| Theme::parse(&w))
}

/// Marks the theme on `<html data-theme>` (removed for the system's): the stylesheet does the
/// rest.
pub fn apply_theme(theme: Theme) {
    let root = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element());
    if let Some(root) = root {
        let _ = match theme {
            Theme::System => root.remove_attribute("data-theme"),
            _ => root.set_attribute("data-theme", theme.word()),
        };
    }
}

/// Keeps and applies a theme.
pub fn choose_theme(theme: Theme) {
    if let Some(s) = storage() {
        let _ = s.set_item(THEME_KEY, theme.word());
    }
    apply_theme(theme);
}

/// The settings dialog's place (empty while closed), shown while `open` is true. Escape, the
/// close button or a click beside the dialog closes it.
pub(crate) fn settings_dialog(open: Var<bool>) -> web_sys::Element {
    let host = new_el("div", "settings-host");
    on(&host, "change", move |ev| on_change(&ev));
    on(&host, "click", move |ev| {
        if target(&ev, "[data-testid=settings-close], .dialog-backdrop").is_some() {
            open.set(false);
        }
    });
    on(&window(), "keydown", move |ev| {
        if key_of(&ev) == "Escape" && open.get_untracked() {
            ev.prevent_default();
            open.set(false);
        }
    });
    let place = Slot::new(&host);
    let was_open = Stored::new(false);
    effect(move || {
        let now = open.get();
        place.set(now.then(|| {
            let d = new_el("div", "");
            build(&d);
            focus_soon("[data-testid=settings-language]");
            d
        }));
        // Closed: the focus goes back to the button that opened the dialog.
        if was_open.get_value() && !now {
            focus_soon("[data-testid=settings-open]");
        }
        was_open.set_value(now);
    });
    host
}

fn build(host: &web_sys::Element) {
    el(host, "div", "dialog-backdrop");
    let dialog = el(host, "div", "dialog app-settings");
    attrs(
        &dialog,
        &[
            ("role", "dialog"),
            ("aria-modal", "true"),
            ("aria-labelledby", "settings-title"),
            ("data-testid", "settings"),
        ],
    );
    let h2 = el(&dialog, "h2", "");
    attrs(&h2, &[("id", "settings-title")]);
    text(&h2, t().settings);

    let current = i18n::lang();
    let first = field(&dialog, t().language, "settings-language");
    for lang in Lang::ALL {
        let o = el(&first, "option", "");
        attrs(&o, &[("value", lang.tag()), ("lang", lang.tag())]);
        if lang == current {
            attrs(&o, &[("selected", "")]);
        }
        text(&o, lang.name());
    }
    let theme = field(&dialog, t().theme, "settings-theme");
    let chosen = stored_theme();
    for th in Theme::ALL {
        let o = el(&theme, "option", "");
        attrs(&o, &[("value", th.word())]);
        if th == chosen {
            attrs(&o, &[("selected", "")]);
        }
        text(&o, th.label());
    }
    let buttons = el(&dialog, "div", "dialog-buttons");
    let close = el(&buttons, "button", "secondary");
    attrs(
        &close,
        &[("type", "button"), ("data-testid", "settings-close")],
    );
    text(&close, t().close);
}

/// A labelled select in the dialog.
fn field(dialog: &web_sys::Element, label: &str, testid: &str) -> web_sys::Element {
    let l = el(dialog, "label", "field");
    text(&el(&l, "span", ""), label);
    let select = el(&l, "select", "");
    attrs(&select, &[("data-testid", testid)]);
    select
}

fn on_change(ev: &web_sys::Event) {
    let Some(select) = target(ev, "select") else {
        return;
    };
    let value = value_of(&select);
    match select.get_attribute("data-testid").as_deref() {
        Some("settings-language") => {
            if let Some(lang) = Lang::from_tag(&value)
                && lang != i18n::lang()
            {
                i18n::switch(lang);
            }
        }
        Some("settings-theme") => choose_theme(Theme::parse(&value)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_theme_round_trips_through_its_word_and_anything_else_is_the_systems() {
        for th in Theme::ALL {
            assert_eq!(Theme::parse(th.word()), th);
        }
        assert_eq!(Theme::parse("purple"), Theme::System);
        assert_eq!(Theme::parse(""), Theme::System);
    }
}
