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

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::client::Client;
use crate::components::dom::{
    Slot, attrs, button, el, el_with, flag, key_of, line, new_el, on, set_value,
    shift_or_composing, text, value_of,
};
use crate::components::messages::start_of;
use crate::components::{effect, memo_fn};
use shared::{DisplayName, MAX_MESSAGE_CHARS, MessageText, RoomId, Username};

use crate::i18n::{fill, t};
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

/// What [`composer`] shows and whom it tells (the props of [`Composer`]).
#[derive(Clone)]
pub(crate) struct ComposerParts {
    pub on_send: Callback<MessageText>,
    pub room: Signal<String>,
    pub room_id: Option<Signal<RoomId>>,
    pub drafts_for: Option<Username>,
    pub blocked: Option<Signal<Option<String>>>,
    pub hint: Option<Signal<Option<String>>>,
}

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
    let p = ComposerParts {
        on_send,
        room,
        room_id,
        drafts_for,
        blocked,
        hint,
    };
    view! { <form use:composer=p></form> }
}

/// Whether Alt, Ctrl or Meta was held during a keyboard event (Alt+Up moves between rooms).
fn modified(ev: &web_sys::Event) -> bool {
    ev.dyn_ref::<web_sys::KeyboardEvent>()
        .is_some_and(|k| k.alt_key() || k.ctrl_key() || k.meta_key())
}

/// Makes `form` the composer (plain DOM: handlers on the form and its textarea, an effect per
/// part that changes).
pub(crate) fn composer(form: web_sys::Element, p: ComposerParts) {
    let ComposerParts {
        on_send,
        room,
        room_id,
        drafts_for,
        blocked,
        hint,
    } = p;
    form.set_class_name("composer");
    let area_el: web_sys::HtmlElement = el_with(&form, "textarea", "", "composer").unchecked_into();
    attrs(&area_el, &[("rows", "1"), ("aria-label", t().message_box)]);
    let send = el_with(&form, "button", "", "send-button");
    attrs(&send, &[("type", "submit")]);
    text(&send, t().send);
    let mention_slot = Slot::new(&form);
    let reply_slot = Slot::new(&form);
    let count_slot = Slot::new(&form);
    let blocked_slot = Slot::new(&form);
    let hint_slot = Slot::new(&form);
    let error_slot = Slot::new(&form);
    let area = StoredValue::new_local(area_el.clone());

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
                && let Some(el) = area.try_get_value()
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
        if let Some(el) = area.try_get_value() {
            let _ = el.focus();
        }
    };
    let look_up = move |value: &str| {
        let caret = area
            .try_get_value()
            .and_then(|el| {
                el.unchecked_ref::<web_sys::HtmlTextAreaElement>()
                    .selection_start()
                    .ok()
                    .flatten()
            })
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
                save_draft("");
                submit_error.set(None);
            }
            Err(e) => submit_error.set(Some(e.to_string())),
        }
    };

    on(&form, "submit", move |ev| {
        ev.prevent_default();
        submit();
    });
    on(&area_el, "input", move |_| {
        let Some(el) = area.try_get_value() else {
            return;
        };
        let value = value_of(&el);
        save_draft(&value);
        look_up(&value);
        text.set(value);
        submit_error.set(None);
    });
    on(&area_el, "keydown", move |ev| {
        let key = key_of(&ev);
        let (shift, composing) = shift_or_composing(&ev);
        let n = choices.with(Vec::len);
        if n > 0 && !composing {
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
        if key == "Enter" && !shift && !composing {
            ev.prevent_default();
            submit();
        } else if key == "ArrowUp"
            && !modified(&ev)
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
    });

    // The textarea and the button follow the text, the room and the block.
    {
        let area_el = area_el.clone();
        effect(move || {
            let t = text.get();
            if value_of(&area_el) != t {
                set_value(&area_el, &t);
            }
        });
    }
    effect(move || {
        attrs(
            &area_el,
            &[(
                "placeholder",
                &fill(t().message_room, &[("room", &room.get())]),
            )],
        );
        flag(&area_el, "disabled", blocked().is_some());
        flag(&send, "disabled", blocked().is_some());
        if over.get() {
            attrs(&area_el, &[("aria-invalid", "true")]);
        } else {
            let _ = area_el.remove_attribute("aria-invalid");
        }
    });
    effect(move || {
        let list = choices.get();
        let at = chosen.get();
        mention_slot.set((!list.is_empty()).then(|| {
            let ul = new_el("ul", "mention-list");
            attrs(&ul, &[("data-testid", "mention-list"), ("role", "listbox")]);
            for (i, (u, n)) in list.into_iter().enumerate() {
                let li = el_with(&ul, "li", "", "mention-option");
                attrs(
                    &li,
                    &[
                        ("data-user", u.as_str()),
                        ("role", "option"),
                        ("aria-selected", if i == at { "true" } else { "false" }),
                    ],
                );
                crate::components::dom::text(&li, &format!("{n} @{u}"));
                on(&li, "mousedown", move |ev| {
                    ev.prevent_default();
                    pick(u.clone());
                });
            }
            ul
        }));
    });
    if let Some(c) = client {
        effect(move || {
            let line = c.reply.get().and_then(|seq| {
                c.chat.with(|chat| {
                    let m = chat.room(chat.current())?.timeline.message(seq)?;
                    Some(if m.deleted.is_some() {
                        t().replying_deleted.to_owned()
                    } else {
                        let shown = crate::markdown::plain(&m.text);
                        fill(
                            t().replying_to,
                            &[
                                ("name", m.author_name.as_str()),
                                ("text", &start_of(&shown, 60)),
                            ],
                        )
                    })
                })
            });
            reply_slot.set(line.map(|line| {
                let p = new_el("p", "replying");
                attrs(&p, &[("data-testid", "replying")]);
                crate::components::dom::text(&el(&p, "span", ""), &line);
                let b = button(&p, "link", "reply-cancel", t().cancel);
                attrs(&b, &[("type", "button")]);
                on(&b, "click", move |_| c.reply.set(None));
                p
            }));
        });
    }
    effect(move || {
        let n = count.get();
        count_slot.set((n >= SHOW_COUNT_FROM).then(|| {
            let class = if over.get() {
                "char-count over"
            } else {
                "char-count"
            };
            line(
                "span",
                class,
                "char-count",
                "",
                &format!("{n}/{MAX_MESSAGE_CHARS}"),
            )
        }));
    });
    effect(move || {
        blocked_slot.text_line(
            "field-note blocked",
            "composer-blocked",
            "status",
            blocked().as_deref(),
        )
    });
    effect(move || hint_slot.text_line("field-note", "composer-hint", "status", hint().as_deref()));
    // The limit error shows while typing, not only after a refused Enter.
    effect(move || {
        let e = submit_error.get().or_else(|| {
            over.get()
                .then(|| fill(t().too_long_chars, &[("n", &MAX_MESSAGE_CHARS.to_string())]))
        });
        error_slot.text_line("field-error", "composer-error", "alert", e.as_deref());
    });
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
