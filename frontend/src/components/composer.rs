//! The message box.
//!
//! Test ids: `composer` (the textarea), `send-button`, `composer-error` (a rule error, such as
//! text over 4000 characters), `char-count` (shown near the limit).

use leptos::prelude::*;
use shared::{MAX_MESSAGE_CHARS, MessageText};

/// From this many characters on, the count is shown.
const SHOW_COUNT_FROM: usize = MAX_MESSAGE_CHARS - 500;

/// A textarea that sends on Enter (Shift+Enter for a new line) and a Send button (phones'
/// Enter key inserts a newline). Text is checked with [`MessageText::parse`] first: text over
/// the limit shows an error and is not sent; blank text is ignored.
#[component]
pub fn Composer(
    /// Called with the checked text; the box is cleared after.
    on_send: Callback<MessageText>,
    /// The name of the room on screen (for the placeholder).
    #[prop(into)]
    room: Signal<String>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let submit_error = RwSignal::new(None::<String>);
    let count = Memo::new(move |_| text.with(|t| t.chars().count()));
    let over = Memo::new(move |_| count.get() > MAX_MESSAGE_CHARS);

    let submit = move || {
        let raw = text.get_untracked();
        if raw.trim().is_empty() {
            return;
        }
        match MessageText::parse(raw) {
            Ok(valid) => {
                on_send.run(valid);
                text.set(String::new());
                submit_error.set(None);
            }
            Err(e) => submit_error.set(Some(e.to_string())),
        }
    };

    // The limit error shows while typing, not only after a refused Enter.
    let error = move || {
        submit_error.get().or_else(|| {
            over.get()
                .then(|| format!("Message is longer than {MAX_MESSAGE_CHARS} characters."))
        })
    };

    view! {
        <form
            class="composer"
            on:submit=move |ev| {
                ev.prevent_default();
                submit();
            }
        >
            <textarea
                data-testid="composer"
                rows="1"
                aria-label="Message"
                aria-invalid=move || over.get().then_some("true")
                placeholder=move || format!("Message #{}", room.get())
                prop:value=move || text.get()
                on:input=move |ev| {
                    text.set(event_target_value(&ev));
                    submit_error.set(None);
                }
                on:keydown=move |ev| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        submit();
                    }
                }
            ></textarea>
            <button type="submit" data-testid="send-button">
                "Send"
            </button>
            {move || {
                (count.get() >= SHOW_COUNT_FROM)
                    .then(move || {
                        view! {
                            <span
                                class="char-count"
                                class:over=over
                                data-testid="char-count"
                            >
                                {move || format!("{}/{MAX_MESSAGE_CHARS}", count.get())}
                            </span>
                        }
                    })
            }}
            {move || {
                error()
                    .map(|e| {
                        view! {
                            <p class="field-error" data-testid="composer-error" role="alert">
                                {e}
                            </p>
                        }
                    })
            }}
        </form>
    }
}
