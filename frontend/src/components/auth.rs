//! The login / registration form.
//!
//! Test ids: `auth-form`, `username-input`, `password-input`, `display-name-input` (optional,
//! used when registering), `login-button`, `register-button`, `username-error`,
//! `password-error`, `display-name-error` (client-side rule errors) and `auth-error` (the
//! server's answer, or a notice such as "session ended").

use leptos::prelude::*;

use crate::components::Var;
use crate::components::dom::{Slot, attrs, button, el, flag, on, tested, text, value_of};
use crate::components::switcher::focus_soon;
use crate::components::{computed, effect};
use crate::i18n::{rule_text, t};
use shared::{DisplayName, NewAccount, Password, Username};

/// Which button was pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// `POST /api/login`.
    Login,
    /// `POST /api/register`.
    Register,
}

/// Username and password fields, an optional display name (for a new account), and a "Log in"
/// and a "Register" button. Input is checked with the protocol's own rules as the user goes
/// (after leaving a field, or on a submit), and `on_submit` only ever sees values that pass
/// them. The display name is sent only when registering, and only when not blank; logging in
/// ignores it.
///
/// One form serves both buttons, so the password's `autocomplete` follows what the user is
/// doing: `current-password` (a password manager fills the saved one) until a display name is
/// typed, which only a new account has, then `new-password`.
#[component]
pub fn AuthForm(
    /// Called with the pressed button and valid values (`display_name` is `None` for a login).
    on_submit: Callback<(AuthMode, NewAccount)>,
    /// The server's answer to the last attempt (or a notice), shown under the buttons.
    #[prop(into)]
    error: Signal<Option<String>>,
    /// A request is on its way: the buttons are disabled.
    #[prop(into)]
    busy: Signal<bool>,
) -> impl IntoView {
    view! { <form use:auth_form=(on_submit, error, busy)></form> }
}

/// What [`auth_form`] is given: the props of [`AuthForm`].
pub(crate) type AuthProps = (
    Callback<(AuthMode, NewAccount)>,
    Signal<Option<String>>,
    Signal<bool>,
);

/// A field with its label (and a hint under it, if any), appended to `form`.
fn field(
    form: &web_sys::Element,
    label: &str,
    id: &str,
    attributes: &[(&str, &str)],
    hint: &str,
) -> web_sys::Element {
    let l = el(form, "label", "");
    attrs(&l, &[("for", id)]);
    text(&l, label);
    let input = el(form, "input", "");
    attrs(&input, &[("id", id)]);
    attrs(&input, attributes);
    if !hint.is_empty() {
        let p = el(form, "p", "hint");
        attrs(&p, &[("id", &format!("{id}-hint"))]);
        text(&p, hint);
    }
    input
}

/// Makes `form` the login / registration form (plain DOM: delegated handlers on the form, an
/// effect per part that changes). See [`AuthForm`].
pub(crate) fn auth_form(form: web_sys::Element, (on_submit, error, busy): AuthProps) {
    let username = Var::new(String::new());
    let password = Var::new(String::new());
    let display_name = Var::new(String::new());
    // Errors show once a field was left or a submit was tried, not on the first keystroke.
    let user_touched = Var::new(false);
    let pass_touched = Var::new(false);
    let name_touched = Var::new(false);
    // The server's refusal is about what was sent: editing a field hides it until the next try.
    let edited = Var::new(false);
    // Blank means "none" (the handle is shown); anything else must pass the rules.
    let parsed_name = move || {
        display_name.with(|n| {
            if n.trim().is_empty() {
                Ok(None)
            } else {
                DisplayName::parse(n.as_str()).map(Some)
            }
        })
    };
    let registering = computed(move || display_name.with(|n| !n.trim().is_empty()));

    let submit = move |mode: AuthMode| {
        edited.set(false);
        user_touched.set(true);
        pass_touched.set(true);
        let user = Username::parse(username.get_untracked());
        let pass = Password::parse(password.get_untracked());
        let name = match mode {
            AuthMode::Login => Ok(None),
            AuthMode::Register => {
                name_touched.set(true);
                untrack(parsed_name)
            }
        };
        if let (Ok(user), Ok(pass), Ok(name)) = (user, pass, name) {
            on_submit.run((
                mode,
                NewAccount {
                    username: user.into_inner(),
                    password: pass.into_inner(),
                    display_name: name.map(DisplayName::into_inner),
                },
            ));
        }
    };

    form.set_class_name("auth");
    attrs(&form, &[("data-testid", "auth-form"), ("novalidate", "")]);
    text(&el(&form, "h1", ""), t().app_name);
    field(
        &form,
        t().username,
        "auth-username",
        &[
            ("data-testid", "username-input"),
            ("name", "username"),
            ("autocomplete", "username"),
            ("autocapitalize", "none"),
            ("spellcheck", "false"),
            ("aria-describedby", "auth-username-hint"),
        ],
        t().username_hint,
    );
    let user_error = Slot::new(&form);
    let pass_input = field(
        &form,
        t().password,
        "auth-password",
        &[
            ("data-testid", "password-input"),
            ("name", "password"),
            ("type", "password"),
            ("autocomplete", "current-password"),
        ],
        "",
    );
    let pass_error = Slot::new(&form);
    field(
        &form,
        t().display_name,
        "auth-display-name",
        &[
            ("data-testid", "display-name-input"),
            ("name", "display_name"),
            ("autocomplete", "nickname"),
            ("placeholder", t().display_name_placeholder),
            ("aria-describedby", "auth-display-name-hint"),
        ],
        t().display_name_hint,
    );
    let name_error = Slot::new(&form);
    let buttons = el(&form, "div", "auth-buttons");
    let login = button(&buttons, "", "login-button", t().log_in);
    attrs(&login, &[("type", "submit")]);
    let register = button(&buttons, "secondary", "register-button", t().register);
    attrs(&register, &[("type", "button")]);
    let server_error = Slot::new(&form);
    focus_soon("[data-testid=username-input]");

    on(&form, "submit", move |ev| {
        ev.prevent_default();
        submit(AuthMode::Login);
    });
    on(&register, "click", move |_| submit(AuthMode::Register));
    on(&form, "input", move |ev| {
        let Some((field, id)) = tested(&ev) else {
            return;
        };
        let value = value_of(&field);
        edited.set(true);
        match id.as_str() {
            "username-input" => username.set(value),
            "password-input" => password.set(value),
            "display-name-input" => display_name.set(value),
            _ => {}
        }
    });
    // Leaving a field (`focusout` is `blur` that bubbles to the form).
    on(&form, "focusout", move |ev| {
        let Some((_, id)) = tested(&ev) else {
            return;
        };
        match id.as_str() {
            "username-input" => user_touched.set(true),
            "password-input" => pass_touched.set(true),
            "display-name-input" => name_touched.set(true),
            _ => {}
        }
    });

    effect(move || {
        let e = user_touched
            .get()
            .then(|| username.with(|u| Username::parse(u.as_str()).err().map(|e| rule_text(&e))))
            .flatten();
        user_error.text_line("field-error", "username-error", "alert", e.as_deref());
    });
    effect(move || {
        let e = pass_touched
            .get()
            .then(|| password.with(|p| Password::parse(p.as_str()).err().map(|e| rule_text(&e))))
            .flatten();
        pass_error.text_line("field-error", "password-error", "alert", e.as_deref());
    });
    // Checked live: an optional field has no "left it empty" error to wait for.
    effect(move || {
        let e = (name_touched.get() || registering.get())
            .then(|| parsed_name().err().map(|e| rule_text(&e)))
            .flatten();
        name_error.text_line("field-error", "display-name-error", "alert", e.as_deref());
    });
    effect(move || {
        let mode = if registering.get() {
            "new-password"
        } else {
            "current-password"
        };
        attrs(&pass_input, &[("autocomplete", mode)]);
    });
    effect(move || {
        let b = busy.get();
        flag(&login, "disabled", b);
        flag(&register, "disabled", b);
    });
    effect(move || {
        let shown = error.get().filter(|_| !edited.get());
        server_error.text_line("auth-error", "auth-error", "alert", shown.as_deref())
    });
}
