//! The login / registration form.
//!
//! Test ids: `auth-form`, `username-input`, `password-input`, `display-name-input` (optional,
//! used when registering), `login-button`, `register-button`, `username-error`,
//! `password-error`, `display-name-error` (client-side rule errors) and `auth-error` (the
//! server's answer, or a notice such as "session ended").

use leptos::prelude::*;

use crate::components::{click, memo_fn, on_event, submit_handler, text_line};
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
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let display_name = RwSignal::new(String::new());
    // Errors show once a field was left or a submit was tried, not on the first keystroke.
    let user_touched = RwSignal::new(false);
    let pass_touched = RwSignal::new(false);
    let name_touched = RwSignal::new(false);
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
    let registering = Memo::new(memo_fn(move |_| {
        display_name.with(|n| !n.trim().is_empty())
    }));

    let user_error = move || {
        if !user_touched.get() {
            return None;
        }
        username.with(|u| Username::parse(u.as_str()).err().map(|e| e.to_string()))
    };
    let pass_error = move || {
        if !pass_touched.get() {
            return None;
        }
        password.with(|p| Password::parse(p.as_str()).err().map(|e| e.to_string()))
    };
    // Checked live: an optional field has no "left it empty" error to wait for.
    let name_error = move || {
        if !name_touched.get() && !registering.get() {
            return None;
        }
        parsed_name().err().map(|e| e.to_string())
    };

    let submit = move |mode: AuthMode| {
        user_touched.set(true);
        pass_touched.set(true);
        let user = Username::parse(username.get_untracked());
        let pass = Password::parse(password.get_untracked());
        let name = match mode {
            AuthMode::Login => Ok(None),
            AuthMode::Register => {
                name_touched.set(true);
                display_name.with_untracked(|n| {
                    if n.trim().is_empty() {
                        Ok(None)
                    } else {
                        DisplayName::parse(n.as_str()).map(Some)
                    }
                })
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

    view! {
        <form
            class="auth"
            data-testid="auth-form"
            novalidate
            on:submit=submit_handler(move |ev| {
                ev.prevent_default();
                submit(AuthMode::Login);
            })
        >
            <h1>"Chat"</h1>
            <label for="auth-username">"Username"</label>
            <input
                id="auth-username"
                data-testid="username-input"
                name="username"
                autocomplete="username"
                autocapitalize="none"
                spellcheck="false"
                aria-describedby="auth-username-hint"
                prop:value=move || username.get()
                on:input=on_event(move |ev| username.set(event_target_value(&ev)))
                on:blur=move |_| user_touched.set(true)
            />
            <p class="hint" id="auth-username-hint">
                "3 to 32 letters, digits, '_', '.' or '-'."
            </p>
            {text_line("field-error", "username-error", "alert", Signal::derive(user_error))}
            <label for="auth-password">"Password"</label>
            <input
                id="auth-password"
                data-testid="password-input"
                name="password"
                type="password"
                autocomplete=move || {
                    if registering.get() { "new-password" } else { "current-password" }
                }
                prop:value=move || password.get()
                on:input=on_event(move |ev| password.set(event_target_value(&ev)))
                on:blur=move |_| pass_touched.set(true)
            />
            {text_line("field-error", "password-error", "alert", Signal::derive(pass_error))}
            <label for="auth-display-name">"Display name"</label>
            <input
                id="auth-display-name"
                data-testid="display-name-input"
                name="display_name"
                autocomplete="nickname"
                placeholder="Display name (optional)"
                aria-describedby="auth-display-name-hint"
                prop:value=move || display_name.get()
                on:input=on_event(move |ev| display_name.set(event_target_value(&ev)))
                on:blur=move |_| name_touched.set(true)
            />
            <p class="hint" id="auth-display-name-hint">
                "For a new account: the name others see (your username if left empty)."
            </p>
            {text_line("field-error", "display-name-error", "alert", Signal::derive(name_error))}
            <div class="auth-buttons">
                <button type="submit" data-testid="login-button" disabled=move || busy.get()>
                    "Log in"
                </button>
                <button
                    type="button"
                    class="secondary"
                    data-testid="register-button"
                    disabled=move || busy.get()
                    on:click=click(move |_| submit(AuthMode::Register))
                >
                    "Register"
                </button>
            </div>
            {text_line("auth-error", "auth-error", "alert", error)}
        </form>
    }
}
