//! The root: asks the server who is logged in, then shows the login form or the chat.
//!
//! Test ids: `splash` (while asking).

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{Credentials, MeResponse, NewAccount};

use crate::api;
use crate::components::{AuthForm, AuthMode, ChatPage, dyn_view};

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

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let auth = RwSignal::new(Auth::Checking);
    spawn_local(async move {
        let next = match api::me().await {
            Ok(Some(user)) => Auth::LoggedIn(user),
            Ok(None) => Auth::LoggedOut(None),
            Err(err) => Auth::LoggedOut(Some(err.auth_text())),
        };
        auth.try_set(next);
    });
    let on_session_end = Callback::new(move |notice: Option<String>| {
        auth.try_set(Auth::LoggedOut(notice));
    });
    let on_logged_in = Callback::new(move |me: MeResponse| {
        auth.try_set(Auth::LoggedIn(me));
    });

    view! {
        {dyn_view(move || match auth.get() {
            Auth::Checking => {
                view! { <p class="splash" data-testid="splash">"Loading…"</p> }.into_any()
            }
            Auth::LoggedOut(notice) => view! { <AuthPage notice on_logged_in /> }.into_any(),
            Auth::LoggedIn(me) => {
                view! {
                    <ChatPage user=me.username display_name=me.display_name on_session_end />
                }
                    .into_any()
            }
        })}
    }
}

/// The login form wired to the API.
#[component]
fn AuthPage(
    /// Shown in the error slot until the first attempt.
    notice: Option<String>,
    /// Called with the user once logged in.
    on_logged_in: Callback<MeResponse>,
) -> impl IntoView {
    let error = RwSignal::new(notice);
    let busy = RwSignal::new(false);
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
    view! {
        <main class="auth-page">
            <AuthForm on_submit error busy />
        </main>
    }
}
