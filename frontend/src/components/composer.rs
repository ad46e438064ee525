//! The message box.
//!
//! Test ids: `composer` (the textarea), `send-button`, `composer-error` (a rule error, such as
//! text over 4000 characters), `char-count` (shown near the limit), `composer-blocked` (why
//! posting is not possible now, e.g. a mute; the box is disabled), `composer-hint` (e.g. slow
//! mode).
//!
//! With `room_id` and `drafts_for`, the text is a draft per room: switching rooms swaps it, and
//! it is kept in `localStorage` ([`crate::drafts`]) so that a reload finds it.

use leptos::prelude::*;

use crate::components::{dyn_opt, dyn_text, memo_fn, on_event, submit_handler, text_line};
use shared::{MAX_MESSAGE_CHARS, MessageText, RoomId, Username};

use crate::drafts;

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
    /// The room on screen, whose draft the box holds.
    #[prop(optional, into)]
    room_id: Option<Signal<RoomId>>,
    /// Whose drafts are kept (with `room_id`).
    #[prop(optional)]
    drafts_for: Option<Username>,
    /// Why posting is not possible now (the box is disabled and says so).
    #[prop(optional, into)]
    blocked: Option<Signal<Option<String>>>,
    /// A short hint below the box.
    #[prop(optional, into)]
    hint: Option<Signal<Option<String>>>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let draft_of = room_id.zip(drafts_for);
    // Each room's draft comes back when the room does (and after a reload).
    if let Some((room_id, user)) = draft_of.clone() {
        Effect::new(move |_| {
            let id = room_id.get();
            text.set(drafts::load(&user, id));
        });
    }
    let draft_of = StoredValue::new(draft_of);
    let save_draft = move |value: &str| {
        draft_of.with_value(|d| {
            if let Some((room_id, user)) = d {
                drafts::save(user, room_id.get_untracked(), value);
            }
        });
    };
    let save_on_send = save_draft;
    let blocked = move || blocked.and_then(|b| b.get());
    let hint = move || hint.and_then(|h| h.get());
    let submit_error = RwSignal::new(None::<String>);
    let count = Memo::new(memo_fn(move |_| text.with(|t| t.chars().count())));
    let over = Memo::new(memo_fn(move |_| count.get() > MAX_MESSAGE_CHARS));

    let submit = move || {
        if blocked().is_some() {
            return;
        }
        let raw = text.get_untracked();
        if raw.trim().is_empty() {
            return;
        }
        match MessageText::parse(raw) {
            Ok(valid) => {
                on_send.run(valid);
                text.set(String::new());
                save_on_send("");
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
            on:submit=submit_handler(move |ev| {
                ev.prevent_default();
                submit();
            })
        >
            <textarea
                data-testid="composer"
                rows="1"
                aria-label="Message"
                aria-invalid=move || over.get().then_some("true")
                placeholder=move || format!("Message #{}", room.get())
                prop:value=move || text.get()
                disabled=move || blocked().is_some()
                on:input=on_event(move |ev| {
                    let value = event_target_value(&ev);
                    save_draft(&value);
                    text.set(value);
                    submit_error.set(None);
                })
                on:keydown=move |ev| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        submit();
                    }
                }
            ></textarea>
            <button type="submit" data-testid="send-button" disabled=move || blocked().is_some()>
                "Send"
            </button>
            {dyn_opt(move || {
                (count.get() >= SHOW_COUNT_FROM)
                    .then(move || {
                        view! {
                            <span
                                class="char-count"
                                class:over=over
                                data-testid="char-count"
                            >
                                {dyn_text(move || format!("{}/{MAX_MESSAGE_CHARS}", count.get()))}
                            </span>
                        }.into_any()
                    })
            })}
            {text_line("field-note blocked", "composer-blocked", "status", Signal::derive(blocked))}
            {text_line("field-note", "composer-hint", "status", Signal::derive(hint))}
            {text_line("field-error", "composer-error", "alert", Signal::derive(error))}
        </form>
    }
}
