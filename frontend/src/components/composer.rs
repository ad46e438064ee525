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
//!
//! With a [`Client`] and `room_id`, it also takes files for the next message: picked with
//! `attach-button` (which opens the hidden `file-input`), dropped anywhere on the page, or
//! pasted into the box, at most [`shared::MAX_ATTACHMENTS`]. Each starts uploading at once
//! and shows as an `upload` chip (`data-state` = `sending` | `done` | `failed`, `data-name`)
//! in `upload-list`, with `upload-progress` (a `<progress>` named after the file) and
//! `upload-cancel` while sending, `upload-error` (the refusal in the person's language),
//! `upload-retry` when trying again may work, and `upload-remove`. Sending a message whose files
//! are still uploading waits for them (`upload-waiting` says so) and sends when the last one is
//! stored; with a failed one it says to retry or remove it first. After a reload the files that
//! were held but not sent are named in `files-lost` (with `files-lost-dismiss`): a page cannot
//! keep a picked file, so they must be attached again (see [`crate::uploads`]).

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::client::Client;
use crate::components::Stored;
use crate::components::Var;
use crate::components::dom::{
    Slot, attrs, button, el, el_with, flag, key_of, line, new_el, on, set_value,
    shift_or_composing, target, text, value_of,
};
use crate::components::messages::start_of;
use crate::components::{computed, effect};
use shared::{DisplayName, MAX_ATTACHMENTS, MAX_MESSAGE_CHARS, MessageText, RoomId, Username};

use crate::i18n::{fill, t};
use crate::uploads::{self, Held, UpState, Upload};
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
    let chips_slot = Slot::new(&form);
    let lost_slot = Slot::new(&form);
    let reply_slot = Slot::new(&form);
    let count_slot = Slot::new(&form);
    let blocked_slot = Slot::new(&form);
    let hint_slot = Slot::new(&form);
    let waiting_slot = Slot::new(&form);
    let error_slot = Slot::new(&form);
    let area = Stored::new(area_el.clone());
    let form_el = Stored::new(form.clone());

    let text = Var::new(String::new());
    let client = use_context::<Client>();
    // Files held for the next message (of any room; each shows in its own), and a send that
    // waits for them.
    let held = Var::new(Vec::<Upload>::new());
    let queued = Var::new(false);
    let files = Stored::new(Vec::<(u64, web_sys::File, Option<web_sys::XmlHttpRequest>)>::new());
    let next_n = Stored::new(0u64);
    let draft_of = room_id.zip(drafts_for.clone());
    // Each room's draft comes back when the room does (and after a reload).
    if let Some((room_id, user)) = draft_of.clone() {
        effect(move || {
            let id = room_id.get();
            text.set(drafts::load(&user, id));
            queued.set(false);
            if let Some(c) = client {
                c.typing(false);
                c.reply.set(None);
            }
        });
    }
    // Replying starts in the box; so does the end of an edit in place (saved or cancelled).
    if let Some(c) = client {
        let was = Stored::new((None::<u64>, false));
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
    let query = Var::new(None::<(usize, String)>);
    let members = Var::new(None::<(RoomId, Vec<(Username, DisplayName)>)>);
    let chosen = Var::new(0usize);
    let choices = computed(move || {
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
    });
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
    let draft_of = Stored::new(draft_of);
    let save_draft = move |value: &str| {
        draft_of.with_value(|d| {
            if let Some((room_id, user)) = d {
                drafts::save(user, room_id.get_untracked(), value);
            }
        });
    };
    let blocked = move || blocked.and_then(|b| b.get());
    let hint = move || hint.and_then(|h| h.get());
    let submit_error = Var::new(None::<String>);
    let count = computed(move || text.with(|t| t.chars().count()));
    let over = computed(move || count.get() > MAX_MESSAGE_CHARS);

    let submit = move || {
        if blocked().is_some() {
            return;
        }
        let raw = text.get_untracked();
        let here: Vec<Upload> = match room_id {
            Some(r) => {
                let r = r.get_untracked();
                held.with_untracked(|l| l.iter().filter(|u| u.room == r).cloned().collect())
            }
            None => Vec::new(),
        };
        if let (Some(c), false) = (client, here.is_empty()) {
            if here
                .iter()
                .any(|u| matches!(u.state, UpState::Failed { .. }))
            {
                submit_error.set(Some(t().files_failed.into()));
                return;
            }
            if here.iter().any(|u| u.state == UpState::Sending) {
                queued.set(true);
                return;
            }
            let body = if raw.trim().is_empty() {
                String::new()
            } else {
                match MessageText::parse(raw) {
                    Ok(v) => v.into_inner(),
                    Err(e) => {
                        submit_error.set(Some(e.to_string()));
                        return;
                    }
                }
            };
            let sent: Vec<u64> = here.iter().map(|u| u.n).collect();
            let done = here
                .into_iter()
                .filter_map(|u| match u.state {
                    UpState::Done(a) => Some(a),
                    _ => None,
                })
                .collect();
            c.send_files(body, done);
            held.update(|l| l.retain(|u| !sent.contains(&u.n)));
            files.update_value(|f| f.retain(|(n, ..)| !sent.contains(n)));
            queued.set(false);
            text.set(String::new());
            save_draft("");
            submit_error.set(None);
            return;
        }
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

    // Uploads: start (or start again) the one numbered `n`.
    let begin = move |n: u64| {
        let Some(file) = files.with_value(|f| f.iter().find(|x| x.0 == n).map(|x| x.1.clone()))
        else {
            return;
        };
        let Some(room) = held.with_untracked(|l| l.iter().find(|u| u.n == n).map(|u| u.room))
        else {
            return;
        };
        held.update(|l| {
            if let Some(u) = l.iter_mut().find(|u| u.n == n) {
                u.state = UpState::Sending;
                u.sent = 0;
            }
        });
        let progress = move |loaded: f64, total: f64| {
            let pct = if total > 0.0 {
                (loaded / total * 100.0).clamp(0.0, 100.0) as u8
            } else {
                0
            };
            held.try_update_untracked(|l| {
                if let Some(u) = l.iter_mut().find(|u| u.n == n) {
                    u.sent = pct;
                }
            });
            if let Some(Ok(Some(bar))) = form_el
                .try_with_value(|f| f.query_selector(&format!("[data-upload=\"{n}\"] progress")))
            {
                attrs(&bar, &[("value", &pct.to_string())]);
            }
        };
        let done = move |res: Result<shared::Attachment, (String, bool)>| {
            let state = match res {
                Ok(a) => UpState::Done(a),
                Err((reason, retry)) => UpState::Failed { reason, retry },
            };
            // A cancelled upload is gone already: its answer changes nothing.
            held.try_update(|l| {
                if let Some(u) = l
                    .iter_mut()
                    .find(|u| u.n == n && u.state == UpState::Sending)
                {
                    u.state = state;
                }
            });
            files.try_update_value(|f| {
                if let Some(x) = f.iter_mut().find(|x| x.0 == n) {
                    x.2 = None;
                }
            });
        };
        let xhr = uploads::start(room, &file, progress, done);
        if xhr.is_none() {
            done_failed(held, n);
        }
        files.update_value(|f| {
            if let Some(x) = f.iter_mut().find(|x| x.0 == n) {
                x.2 = xhr;
            }
        });
    };
    let add_files = move |list: web_sys::FileList| {
        let Some(room) = room_id.map(|r| r.get_untracked()) else {
            return;
        };
        if client.is_none() || blocked().is_some() {
            return;
        }
        let mut have = held.with_untracked(|l| l.iter().filter(|u| u.room == room).count());
        for i in 0..list.length() {
            let Some(file) = list.get(i) else { continue };
            if have >= MAX_ATTACHMENTS {
                submit_error.set(Some(fill(
                    t().too_many_files,
                    &[("n", &MAX_ATTACHMENTS.to_string())],
                )));
                break;
            }
            have += 1;
            let n = next_n.get_value();
            next_n.set_value(n + 1);
            let size = file.size() as u64;
            let refused = uploads::precheck(size);
            let state = match &refused {
                Some(reason) => UpState::Failed {
                    reason: reason.clone(),
                    retry: false,
                },
                None => UpState::Sending,
            };
            held.update(|l| {
                l.push(Upload {
                    n,
                    room,
                    name: file.name(),
                    size,
                    state,
                    sent: 0,
                })
            });
            files.update_value(|f| f.push((n, file, None)));
            if refused.is_none() {
                begin(n);
            }
        }
    };
    let drop_upload = move |n: u64| {
        if let Some(Some(xhr)) =
            files.with_value(|f| f.iter().find(|x| x.0 == n).map(|x| x.2.clone()))
        {
            let _ = xhr.abort();
        }
        held.update(|l| l.retain(|u| u.n != n));
        files.update_value(|f| f.retain(|x| x.0 != n));
    };
    if let (Some(_), Some(room_id)) = (client, room_id) {
        let attach = new_el("button", "secondary attach");
        attrs(
            &attach,
            &[
                ("type", "button"),
                ("data-testid", "attach-button"),
                ("aria-label", t().attach_files),
                ("title", t().attach_files),
            ],
        );
        crate::components::dom::text(&attach, "📎");
        let _ = form.insert_before(&attach, Some(&area_el));
        let input = el_with(&form, "input", "", "file-input");
        attrs(
            &input,
            &[
                ("type", "file"),
                ("multiple", ""),
                ("hidden", ""),
                ("tabindex", "-1"),
            ],
        );
        {
            let input = input.clone();
            on(&attach, "click", move |_| {
                if let Some(i) = input.dyn_ref::<web_sys::HtmlElement>() {
                    i.click();
                }
            });
        }
        on(&input, "change", move |ev| {
            let Some(i) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            if let Some(list) = i.files() {
                add_files(list);
            }
            i.set_value("");
        });
        on(&area_el, "paste", move |ev| {
            let list = ev
                .dyn_ref::<web_sys::ClipboardEvent>()
                .and_then(web_sys::ClipboardEvent::clipboard_data)
                .and_then(|d| d.files());
            if let Some(list) = list.filter(|l| l.length() > 0) {
                ev.prevent_default();
                add_files(list);
            }
        });
        // Files dropped anywhere on the page go to the room on screen (and never replace the
        // page, which is what a browser does with a dropped file otherwise).
        on(&window(), "dragover", move |ev| {
            if dragged_files(&ev).is_some() {
                ev.prevent_default();
            }
        });
        on(&window(), "drop", move |ev| {
            if let Some(list) = dragged_files(&ev) {
                ev.prevent_default();
                add_files(list);
            }
        });
        let update_chip = move |ev: web_sys::Event| {
            let Some(b) = target(&ev, "[data-act]") else {
                return;
            };
            let n = b
                .closest("[data-upload]")
                .ok()
                .flatten()
                .and_then(|li| li.get_attribute("data-upload"))
                .and_then(|v| v.parse::<u64>().ok());
            let Some(n) = n else { return };
            match b.get_attribute("data-act").as_deref() {
                Some("retry") => begin(n),
                _ => {
                    drop_upload(n);
                    if let Some(el) = area.try_get_value() {
                        let _ = el.focus();
                    }
                }
            }
        };
        on(&form, "click", update_chip);
        // The chips of the room on screen; rebuilt when one changes state (progress moves the
        // bar in place), the focus kept on the same chip's button.
        effect(move || {
            let room = room_id.get();
            let list: Vec<Upload> =
                held.with(|l| l.iter().filter(|u| u.room == room).cloned().collect());
            let focused = document().active_element().and_then(|a| {
                let n = a
                    .closest("[data-upload]")
                    .ok()
                    .flatten()?
                    .get_attribute("data-upload")?;
                Some((n, a.get_attribute("data-testid")?))
            });
            chips_slot.set((!list.is_empty()).then(|| chips(&list)));
            if let Some((n, id)) = focused {
                let sel = format!("[data-upload=\"{n}\"] [data-testid=\"{id}\"]");
                let again = form_el
                    .try_with_value(|f| f.query_selector(&sel).ok().flatten())
                    .flatten()
                    .or_else(|| area.try_get_value().map(Into::into));
                if let Some(e) = again.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
                    let _ = e.focus();
                }
            }
        });
        // A send waiting for its files goes out when the last one is stored; a failure stops it.
        effect(move || {
            if !queued.get() {
                return;
            }
            let room = room_id.get_untracked();
            let (sending, failed) = held.with(|l| {
                let here = l.iter().filter(|u| u.room == room);
                (
                    here.clone().any(|u| u.state == UpState::Sending),
                    here.clone()
                        .any(|u| matches!(u.state, UpState::Failed { .. })),
                )
            });
            if failed {
                queued.set(false);
            } else if !sending {
                untrack(submit);
            }
        });
        // The names of the files held are kept, so that after a reload the composer can say
        // which ones to attach again; those of the page before are said until dismissed.
        if let Some(user) = drafts_for.clone() {
            let lost = Var::new(uploads::load_held(&user));
            effect(move || {
                let mut keep = lost.get();
                held.with(|l| {
                    keep.extend(l.iter().map(|u| Held {
                        room: u.room,
                        name: u.name.clone(),
                    }))
                });
                uploads::save_held(&user, &keep);
            });
            effect(move || {
                let room = room_id.get();
                let names: Vec<String> = lost.with(|l| {
                    l.iter()
                        .filter(|h| h.room == room)
                        .map(|h| h.name.clone())
                        .collect()
                });
                lost_slot.set((!names.is_empty()).then(|| {
                    let p = line(
                        "p",
                        "field-note lost",
                        "files-lost",
                        "status",
                        &fill(t().files_lost, &[("names", &names.join(", "))]),
                    );
                    let b = button(&p, "link", "files-lost-dismiss", t().dismiss);
                    attrs(&b, &[("type", "button")]);
                    on(&b, "click", move |_| {
                        lost.update(|l| l.retain(|h| h.room != room))
                    });
                    p
                }));
            });
        }
    }
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
                // Your last message is in the live timeline, not in a window far back.
                c.close_window_if_open();
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
                    let m = chat.current_message(seq)?;
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
    effect(move || {
        let note = queued.get().then_some(t().waiting_for_files);
        waiting_slot.text_line("field-note", "upload-waiting", "status", note);
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

/// The files a drag carries, if it carries any.
fn dragged_files(ev: &web_sys::Event) -> Option<web_sys::FileList> {
    let dt = ev.dyn_ref::<web_sys::DragEvent>()?.data_transfer()?;
    let has = dt.types().includes(&"Files".into(), 0);
    if !has {
        return None;
    }
    // While dragging over, the list is empty (the browser shows it only on drop).
    dt.files()
}

/// Marks an upload failed for lack of a request (the browser refused to start it).
fn done_failed(held: Var<Vec<Upload>>, n: u64) {
    held.update(|l| {
        if let Some(u) = l.iter_mut().find(|u| u.n == n) {
            u.state = UpState::Failed {
                reason: t().err_upload_failed.into(),
                retry: true,
            };
        }
    });
}

/// The chips of the files held for a room's next message.
fn chips(list: &[Upload]) -> web_sys::Element {
    let ul = new_el("ul", "uploads");
    attrs(
        &ul,
        &[
            ("data-testid", "upload-list"),
            ("aria-label", t().files_label),
        ],
    );
    for u in list {
        let state = match u.state {
            UpState::Sending => "sending",
            UpState::Done(_) => "done",
            UpState::Failed { .. } => "failed",
        };
        let li = el_with(&ul, "li", &format!("upload {state}"), "upload");
        attrs(
            &li,
            &[
                ("data-upload", &u.n.to_string()),
                ("data-state", state),
                ("data-name", &u.name),
            ],
        );
        text(&el(&li, "span", "file-name"), &u.name);
        text(&el(&li, "span", "file-size"), &uploads::size_text(u.size));
        let name = [("name", u.name.as_str())];
        let act = |testid: &str, act: &str, label: &str, aria: &str| {
            let b = button(&li, "link", testid, label);
            attrs(
                &b,
                &[("type", "button"), ("data-act", act), ("aria-label", aria)],
            );
        };
        match &u.state {
            UpState::Sending => {
                let bar = el_with(&li, "progress", "", "upload-progress");
                attrs(
                    &bar,
                    &[
                        ("max", "100"),
                        ("value", &u.sent.to_string()),
                        ("aria-label", &fill(t().uploading, &name)),
                    ],
                );
                act(
                    "upload-cancel",
                    "cancel",
                    "×",
                    &fill(t().cancel_upload, &name),
                );
            }
            UpState::Done(_) => {
                attrs(&li, &[("title", &fill(t().upload_done, &name))]);
                act(
                    "upload-remove",
                    "remove",
                    "×",
                    &fill(t().remove_file, &name),
                );
            }
            UpState::Failed { reason, retry } => {
                let e = line("span", "field-error", "upload-error", "alert", reason);
                let _ = li.append_child(&e);
                if *retry {
                    act(
                        "upload-retry",
                        "retry",
                        t().retry,
                        &fill(t().retry_upload, &name),
                    );
                }
                act(
                    "upload-remove",
                    "remove",
                    "×",
                    &fill(t().remove_file, &name),
                );
            }
        }
    }
    ul
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
