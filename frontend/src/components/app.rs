//! The root: asks the server who is logged in, then shows the login form or the chat.
//!
//! Test ids: `splash` (while asking).

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{Credentials, MeResponse, NewAccount};

use crate::components::AuthMode;
use crate::components::Var;
use crate::components::auth::auth_form;
use crate::components::dom::{Slot, el, line, new_el};
use crate::components::effect;
use crate::components::layout::chat_page;
use crate::i18n::t;
use crate::{api, cache};

/// Who is using the app.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Auth {
    /// `GET /api/me` has not answered.
    Checking,
    /// Nobody: the login form, with an optional notice (for example "session ended").
    LoggedOut(Option<String>),
    /// A session exists for this user (with their display name).
    LoggedIn(MeResponse),
}

/// The whole app, built in `<body>` (plain DOM: the page of the moment in a [`Slot`], rebuilt
/// with its own effects and handlers when who is logged in changes).
#[component]
pub fn App() -> impl IntoView {
    let auth = Var::new(Auth::Checking);
    spawn_local(async move {
        let next = match api::me().await {
            Ok(Some(user)) => Auth::LoggedIn(user),
            Ok(None) => Auth::LoggedOut(None),
            // The server cannot be reached: the app opens offline as the user it last showed
            // (the socket reconnects when it can, and a session that ended meanwhile logs out).
            Err(err) => match err.status().is_none().then(cache::load_any).flatten() {
                Some(kept) => Auth::LoggedIn(kept.me),
                None => Auth::LoggedOut(Some(err.auth_text())),
            },
        };
        auth.try_set(next);
    });
    let on_session_end = Callback::new(move |notice: Option<String>| {
        cache::clear();
        auth.try_set(Auth::LoggedOut(notice));
    });
    let on_logged_in = Callback::new(move |me: MeResponse| {
        auth.try_set(Auth::LoggedIn(me));
    });
    let Some(body) = document().body() else {
        return;
    };
    let page = Slot::new(&body);
    // Each run's owner holds the page it built: the previous page's effects, handlers and
    // session (connection, listeners) end before the next page is built.
    effect(move || {
        let now = auth.get();
        page.set(Some(untrack(|| match now {
            Auth::Checking => line("p", "splash", "splash", "", t().loading),
            Auth::LoggedOut(notice) => {
                // Not the last user's room: the app's name, in the page's language.
                document().set_title(t().app_name);
                auth_page(notice, on_logged_in)
            }
            Auth::LoggedIn(me) => chat_page(me.username, me.display_name, on_session_end),
        })));
    });
}

/// The login form wired to the API.
fn auth_page(notice: Option<String>, on_logged_in: Callback<MeResponse>) -> web_sys::Element {
    let error = Var::new(notice);
    let busy = Var::new(false);
    let on_submit = Callback::new(move |(mode, account): (AuthMode, NewAccount)| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let result = match mode {
                AuthMode::Login => {
                    api::login(&Credentials {
                        username: account.username,
                        password: account.password,
                    })
                    .await
                }
                AuthMode::Register => api::register(&account).await,
            };
            busy.try_set(false);
            match result {
                Ok(session) => on_logged_in.run(MeResponse {
                    username: session.username,
                    display_name: session.display_name,
                }),
                Err(err) => {
                    error.try_set(Some(err.auth_text()));
                }
            }
        });
    });
    let main = new_el("main", "auth-page");
    auth_form(
        el(&main, "form", ""),
        (on_submit, error.into(), busy.into()),
    );
    main
}
