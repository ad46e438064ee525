//! The message box.
//!
//! Test ids: `composer` (the textarea), `send-button`, `composer-error` (a rule error, such as
//! text over 4000 characters), `char-count` (shown near the limit), `composer-blocked` (why
//! posting is not possible now, e.g. a mute; the box is disabled), `composer-hint` (e.g. slow
//! mode).
//!
//! With `room_id` and `drafts_for`, the text is a draft per room: switching rooms swaps it, and
//! it is kept in `localStorage` ([`crate::drafts`]) so that a reload finds it.
//!
//! With a [`Client`] in context it also: announces typing; shows the message being answered
//! (`replying`, with `reply-cancel`); completes `@handle` mentions from the room's members
//! (`mention-list` with `mention-option`, `data-user`; arrow keys, Enter or Tab to pick, Escape
//! closes); and Up in an empty box edits the user's last message.

use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::client::Client;
use crate::components::messages::start_of;
use crate::components::{
    click, dyn_opt, dyn_text, effect, memo_fn, on_event, submit_handler, text_line,
};
use shared::{DisplayName, MAX_MESSAGE_CHARS, MessageText, RoomId, Username};

use crate::{api, drafts};

/// Names offered at most by the mention completion.
const MENTION_CHOICES: usize = 8;

/// The `@word` being typed just before the caret: where its `@` is (byte offset) and the word.
pub fn mention_query(text: &str, caret: usize) -> Option<(usize, String)> {
    let before = text.get(..caret)?;
    let at = before.rfind('@')?;
    let word = &before[at + 1..];
    let starts_word = before[..at]
        .chars()
        .next_back()
        .is_none_or(char::is_whitespace);
    (starts_word && !word.contains(char::is_whitespace)).then(|| (at, word.to_owned()))
}

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
    let client = use_context::<Client>();
    let draft_of = room_id.zip(drafts_for);
    // Each room's draft comes back when the room does (and after a reload).
    if let Some((room_id, user)) = draft_of.clone() {
        effect(move || {
            let id = room_id.get();
            text.set(drafts::load(&user, id));
            if let Some(c) = client {
                c.typing(false);
                c.reply.set(None);
            }
        });
    }
    let area = NodeRef::<html::Textarea>::new();
    // Replying starts in the box; so does the end of an edit in place (saved or cancelled).
    if let Some(c) = client {
        let was = StoredValue::new((None::<u64>, false));
        effect(move || {
            let now = (c.reply.get(), c.editing.with(Option::is_some));
            let Some(before) = was.try_update_value(|w| std::mem::replace(w, now)) else {
                return;
            };
            let replied = now.0.is_some() && now.0 != before.0;
            if (replied || before.1 && !now.1)
                && let Some(Some(el)) = area.try_get_untracked()
            {
                let _ = el.focus();
            }
        });
    }
    // Mention completion: the word typed, the room's members (loaded on the first `@`), the
    // choice highlighted.
    let query = RwSignal::new(None::<(usize, String)>);
    let members = RwSignal::new(None::<(RoomId, Vec<(Username, DisplayName)>)>);
    let chosen = RwSignal::new(0usize);
    let choices = Memo::new(memo_fn(move |_| {
        let Some((_, word)) = query.get() else {
            return Vec::new();
        };
        let word = word.to_lowercase();
        members.with(|m| {
            m.iter()
                .flat_map(|(_, list)| list.iter())
                .filter(|(u, n)| {
                    u.as_str().to_lowercase().starts_with(&word)
                        || n.as_str().to_lowercase().starts_with(&word)
                })
                .take(MENTION_CHOICES)
                .cloned()
                .collect::<Vec<_>>()
        })
    }));
    let pick = move |user: Username| {
        let Some((at, word)) = query.get_untracked() else {
            return;
        };
        text.update(|t| {
            let end = (at + 1 + word.len()).min(t.len());
            if t.is_char_boundary(end) {
                t.replace_range(at..end, &format!("@{user} "));
            }
        });
        query.set(None);
        if let Some(Some(el)) = area.try_get_untracked() {
            let _ = el.focus();
        }
    };
    let look_up = move |value: &str| {
        let caret = area
            .get_untracked()
            .and_then(|el| el.selection_start().ok().flatten())
            .map_or(value.len(), |c| {
                // The caret counts UTF-16 units; the text is UTF-8.
                let mut units = 0;
                value
                    .char_indices()
                    .find(|(_, ch)| {
                        units += ch.len_utf16();
                        units > c as usize
                    })
                    .map_or(value.len(), |(i, _)| i)
            });
        let q = mention_query(value, caret);
        let (Some(c), Some(room_id)) = (client, room_id) else {
            return;
        };
        let id = room_id.get_untracked();
        // Read the members when a mention starts (people come and go between mentions).
        if q.is_some() && query.with_untracked(Option::is_none) {
            if members.with_untracked(|m| m.as_ref().is_none_or(|(r, _)| *r != id)) {
                members.set(Some((id, Vec::new())));
            }
            spawn_local(async move {
                if let Ok(list) = api::members(id).await {
                    let people = list.into_iter().map(|m| (m.user, m.display_name));
                    members.try_set(Some((id, people.collect())));
                }
            });
        }
        chosen.set(0);
        query.set(q);
        c.typing(!value.trim().is_empty());
    };
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
                node_ref=area
                on:input=on_event(move |ev| {
                    let value = event_target_value(&ev);
                    save_draft(&value);
                    look_up(&value);
                    text.set(value);
                    submit_error.set(None);
                })
                on:keydown=move |ev| {
                    let key = ev.key();
                    let n = choices.with(Vec::len);
                    if n > 0 && !ev.is_composing() {
                        match key.as_str() {
                            "ArrowDown" | "ArrowUp" => {
                                ev.prevent_default();
                                let step = if key == "ArrowDown" { 1 } else { n - 1 };
                                chosen.update(|c| *c = (*c + step) % n);
                                return;
                            }
                            "Enter" | "Tab" => {
                                ev.prevent_default();
                                let i = chosen.get_untracked().min(n - 1);
                                if let Some((u, _)) = choices.with_untracked(|c| c.get(i).cloned()) {
                                    pick(u);
                                }
                                return;
                            }
                            "Escape" => {
                                ev.prevent_default();
                                query.set(None);
                                return;
                            }
                            _ => {}
                        }
                    }
                    if key == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        submit();
                    } else if key == "ArrowUp"
                        && text.with_untracked(String::is_empty)
                        && let Some(c) = client
                    {
                        let last = c.chat.with_untracked(|chat| {
                            chat.room(chat.current())
                                .and_then(|r| r.timeline.last_own(&chat_me(chat)).map(|m| m.seq))
                        });
                        if last.is_some() {
                            ev.prevent_default();
                            c.editing.set(last);
                        }
                    } else if key == "Escape"
                        && let Some(c) = client
                    {
                        c.reply.set(None);
                    }
                }
            ></textarea>
            <button type="submit" data-testid="send-button" disabled=move || blocked().is_some()>
                "Send"
            </button>
            {dyn_opt(move || {
                let list = choices.get();
                (!list.is_empty())
                    .then(|| {
                        let at = chosen.get();
                        list.into_iter()
                            .enumerate()
                            .map(|(i, (u, n))| {
                                let label = format!("{n} @{u}");
                                let user = u.to_string();
                                view! {
                                    <li
                                        data-testid="mention-option"
                                        data-user=user
                                        role="option"
                                        aria-selected=(i == at).to_string()
                                        on:mousedown=move |ev| {
                                            ev.prevent_default();
                                            pick(u.clone());
                                        }
                                    >
                                        {label}
                                    </li>
                                }
                            })
                            .collect_view()
                            .into_any()
                    })
                    .map(|items| {
                        view! {
                            <ul class="mention-list" data-testid="mention-list" role="listbox">
                                {items}
                            </ul>
                        }
                            .into_any()
                    })
            })}
            {client.map(|c| dyn_opt(move || {
                let seq = c.reply.get()?;
                let line = c.chat.with(|chat| {
                    let m = chat.room(chat.current())?.timeline.message(seq)?;
                    Some(if m.deleted.is_some() {
                        "Replying to a deleted message".to_owned()
                    } else {
                        let shown = crate::markdown::plain(&m.text);
                        format!("Replying to {}: {}", m.author_name, start_of(&shown, 60))
                    })
                })?;
                Some(view! {
                    <p class="replying" data-testid="replying">
                        <span>{line}</span>
                        <button
                            class="link"
                            type="button"
                            data-testid="reply-cancel"
                            on:click=click(move |_| c.reply.set(None))
                        >
                            "Cancel"
                        </button>
                    </p>
                }.into_any())
            }))}
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

/// The logged-in user as the timeline needs them.
fn chat_me(chat: &crate::chat::Chat) -> crate::timeline::Me {
    crate::timeline::Me::new(chat.me().clone(), chat.my_name().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mention_being_typed_is_the_word_after_an_at_before_the_caret() {
        assert_eq!(mention_query("hi @Al", 6), Some((3, "Al".into())));
        assert_eq!(mention_query("@", 1), Some((0, String::new())));
        assert_eq!(mention_query("mail a@b", 8), None, "inside a word");
        assert_eq!(mention_query("@al is here", 11), None, "a space after");
        assert_eq!(mention_query("@al is here", 3), Some((0, "al".into())));
        assert_eq!(mention_query("no at", 5), None);
    }
}
