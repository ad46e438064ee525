//! The member panel of the room on screen: its people (display name, handle, role, online,
//! muted), a direct conversation from a name, invitations, and for moderators the moderation
//! actions (each behind a confirmation), the room's settings (topic, slow mode), its filter
//! rules and its audit log.
//!
//! Test ids: `member-panel` (`data-room-id`), `member-list`, `member-item` (`data-user`,
//! `data-role` = `member` | `moderator` | `owner`, `data-online`, `data-muted`), inside it
//! `member-presence` (a dot, `data-presence` = `online` | `away` | `offline`, live), `member-name` (a button opening a direct conversation), `member-handle`, `member-role`,
//! `member-muted`, and the actions `member-kick`, `member-ban`, `member-mute`, `member-unmute`,
//! `member-promote`, `member-demote`; `members-error`; `confirm-dialog` with `confirm-text`,
//! `confirm-reason`, `confirm-duration` (select, seconds), `confirm-ok`, `confirm-cancel`,
//! `confirm-error`; `invite-toggle` with the people picker and `invite-done`; `room-settings`
//! with `topic-input`, `slow-mode-input`, `settings-save`, `settings-error`, `settings-saved`;
//! `filter-editor` with `filter-item` (`data-rule-id`, `filter-delete`), `filter-kind`,
//! `filter-pattern`, `filter-action`, `filter-add`, `filter-error`; `audit-log` with
//! `audit-item`, `audit-refresh`.

//!
//! The panel is plain DOM (see [`crate::components::dom`]), the people picker too: one
//! delegated handler per event kind on the panel, and one effect per part that comes and goes.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{
    AuditEntry, DisplayName, FilterAction, FilterKind, FilterRule, MemberInfo, ModAction,
    NewFilter, Role, RoomId, RoomSettings, Username,
};
use wasm_bindgen::JsCast;

use crate::api::{self, Moderation};
use crate::browser;
use crate::chat::sort_by_key;
use crate::client::Client;
use crate::components::Stored;
use crate::components::Var;
use crate::components::dom::{
    Slot, attrs, button, el, el_with, line, new_el, on, set_value, target, tested, text, value_of,
};
use crate::components::people::people_picker;
use crate::components::switcher::focus_soon;
use crate::components::{Computed, computed, effect};
use crate::i18n::t;

/// The panel's words.
mod text {
    use shared::Role;

    use crate::api::Moderation;
    use crate::i18n::{fill, t};

    /// The choices of the mute dialog: seconds and their label.
    pub fn mute_times() -> [(u32, &'static str); 4] {
        let t = t();
        [
            (60, t.one_minute),
            (600, t.ten_minutes),
            (3_600, t.one_hour),
            (86_400, t.one_day),
        ]
    }

    pub fn role(role: Role) -> &'static str {
        match role {
            Role::Member | Role::Unknown => t().role_member,
            Role::Moderator => t().role_moderator,
            Role::Owner => t().role_owner,
        }
    }

    pub fn people_in(room: &str) -> String {
        fill(t().people_in, &[("room", room)])
    }

    pub fn invited(names: &[String]) -> String {
        fill(t().invited, &[("names", &names.join(", "))])
    }

    pub fn question(what: Moderation, name: &str, room: &str) -> String {
        let t = t();
        let template = match what {
            Moderation::Kick => t.ask_kick,
            Moderation::Ban => t.ask_ban,
            Moderation::Unban => t.ask_unban,
            Moderation::Mute => t.ask_mute,
            Moderation::Unmute => t.ask_unmute,
            Moderation::Role => t.ask_role,
        };
        fill(template, &[("name", name), ("room", room)])
    }

    pub fn make(role: Role, name: &str) -> String {
        let template = match role {
            Role::Moderator => t().ask_promote,
            _ => t().ask_demote,
        };
        fill(template, &[("name", name)])
    }

    pub fn muted_until(time: &str) -> String {
        fill(t().muted_until, &[("time", time)])
    }

    pub fn rule(kind: shared::FilterKind, action: shared::FilterAction) -> &'static str {
        use shared::{FilterAction, FilterKind};
        let t = t();
        match (kind, action) {
            (FilterKind::Keyword, FilterAction::Refuse) => t.rule_keyword_refuse,
            (FilterKind::Keyword, FilterAction::Mask) => t.rule_keyword_mask,
            (FilterKind::Regex, FilterAction::Refuse) => t.rule_regex_refuse,
            (FilterKind::Regex, FilterAction::Mask) => t.rule_regex_mask,
            _ => t.rule_unknown,
        }
    }

    /// An audit entry's action in words (a code from a newer server as it came).
    pub fn audit_action(action: &str) -> &str {
        let t = t();
        match action {
            "kick" => t.audit_kick,
            "ban" => t.audit_ban,
            "unban" => t.audit_unban,
            "mute" => t.audit_mute,
            "unmute" => t.audit_unmute,
            "role" => t.audit_role,
            "slow_mode" => t.audit_slow_mode,
            "topic" => t.audit_topic,
            "filter_add" => t.audit_filter_add,
            "filter_remove" => t.audit_filter_remove,
            "invite" => t.audit_invite,
            other => other,
        }
    }

    pub fn audit_line(actor: &str, action: &str, target: Option<&str>) -> String {
        fill(
            t().audit_line,
            &[
                ("actor", actor),
                ("action", audit_action(action)),
                ("target", target.unwrap_or("")),
            ],
        )
        .trim_end()
        .to_owned()
    }
}

/// A moderation action waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    what: Moderation,
    user: Username,
    name: DisplayName,
    /// For a role change: the new role.
    role: Option<Role>,
}

/// The panel's state, shared by its handlers and effects (every field is a `Copy` handle).
#[derive(Clone, Copy)]
struct Panel {
    client: Client,
    room: RoomId,
    title: Computed<String>,
    my_role: Computed<Option<Role>>,
    moderates: Computed<bool>,
    /// Changes with the room's membership (the audit log is read again then).
    rev: Computed<u64>,
    /// The members, once read.
    members: Var<Option<Vec<MemberInfo>>>,
    error: Var<Option<String>>,
    /// Reads the members again.
    reload: Callback<()>,
    /// The action the dialog asks to confirm.
    confirm: Var<Option<Pending>>,
    busy: Var<bool>,
    confirm_error: Var<Option<String>>,
    invite_open: Var<bool>,
    invite_error: Var<Option<String>>,
    invite_done: Var<Option<String>>,
    /// Invites the people picked.
    invite: Callback<Vec<(Username, DisplayName)>>,
    saved: Var<bool>,
    settings_error: Var<Option<String>>,
    rules: Var<Vec<FilterRule>>,
    filter_error: Var<Option<String>>,
    audit: Var<Vec<AuditEntry>>,
    audit_error: Var<Option<String>>,
}

/// The member panel of `room` (built again for each room): its element (plain DOM, with its
/// handlers), for the [`Client`] in context.
pub(crate) fn member_panel(room: RoomId) -> web_sys::Element {
    let client = expect_context::<Client>();
    let title = computed(move || client.chat.with(|c| c.room_title(room)));
    let my_role = computed(move || client.chat.with(|c| c.role(room)));
    let direct = computed(move || client.chat.with(|c| c.is_direct(room)));
    let moderates =
        computed(move || !direct.get() && my_role.get().is_some_and(|r| r >= Role::Moderator));
    let rev = computed(move || client.chat.with(|c| c.members_rev(room)));
    let members = Var::new(None::<Vec<MemberInfo>>);
    let error = Var::new(None::<String>);
    let generation = Stored::new(0u64);

    let load = move || {
        let Some(mine) = generation.try_update_value(|g| {
            *g += 1;
            *g
        }) else {
            return;
        };
        spawn_local(async move {
            let got = api::members(room).await;
            if generation.try_get_value() != Some(mine) {
                return;
            }
            match got {
                Ok(mut list) => {
                    // Highest role first, then by name.
                    sort_by_key(&mut list, |m| {
                        (
                            u8::MAX - m.role as u8,
                            m.display_name.as_str().to_lowercase(),
                            0,
                        )
                    });
                    client.chat.try_update(|c| {
                        c.learn_people(
                            list.iter()
                                .map(|m| (m.user.clone(), m.display_name.clone())),
                        );
                        let own = list.iter().find(|m| m.user == *c.me());
                        if let Some(own) = own {
                            c.set_muted(room, own.muted_until);
                        }
                    });
                    members.try_set(Some(list));
                    error.try_set(None);
                }
                Err(e) => {
                    error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    // Who is online changes the dots: read the list again then too.
    let online = computed(move || {
        client
            .chat
            .with(|c| c.room(room).map(|r| r.online.clone()).unwrap_or_default())
    });
    effect(move || {
        // Read, not only tracked: a memo recomputes when read.
        let _ = (rev.get(), online.get());
        load();
    });

    let invite_open = Var::new(false);
    let invite_error = Var::new(None::<String>);
    let invite_done = Var::new(None::<String>);
    let invite = Callback::new(move |people: Vec<(Username, DisplayName)>| {
        invite_error.set(None);
        invite_done.set(None);
        spawn_local(async move {
            let mut invited = Vec::new();
            for (user, name) in people {
                match api::invite(room, user.as_str()).await {
                    Ok(()) => invited.push(name.to_string()),
                    Err(e) => {
                        invite_error.try_set(Some(e.to_string()));
                    }
                }
            }
            if !invited.is_empty() {
                invite_done.try_set(Some(text::invited(&invited)));
                invite_open.try_set(false);
            }
        });
    });
    let p = Panel {
        client,
        room,
        title,
        my_role,
        moderates,
        rev,
        members,
        error,
        reload: Callback::new(move |()| load()),
        confirm: Var::new(None),
        busy: Var::new(false),
        confirm_error: Var::new(None),
        invite_open,
        invite_error,
        invite_done,
        invite,
        saved: Var::new(false),
        settings_error: Var::new(None),
        rules: Var::new(Vec::new()),
        filter_error: Var::new(None),
        audit: Var::new(Vec::new()),
        audit_error: Var::new(None),
    };
    let aside = new_el("aside", "member-panel");
    attrs(
        &aside,
        &[
            ("data-testid", "member-panel"),
            ("data-room-id", &room.to_string()),
        ],
    );
    on(&aside, "click", move |ev| on_click(p, &ev));
    on(&aside, "submit", move |ev| on_submit(p, &ev));
    on(&aside, "input", move |ev| on_input(p, &ev));
    build(p, &aside, direct);
    aside
}

/// The button of the member list now on the page that plays the part of `old` (the same test
/// id, in the row of the same member), for giving the focus back after the list was built again.
fn same_button(old: &web_sys::Element) -> Option<web_sys::HtmlElement> {
    let id = old.get_attribute("data-testid")?;
    let user = old
        .closest("[data-user]")
        .ok()
        .flatten()?
        .get_attribute("data-user")?;
    document()
        .query_selector(&format!(
            "[data-testid=member-list] [data-user=\"{user}\"] [data-testid=\"{id}\"]"
        ))
        .ok()
        .flatten()?
        .dyn_into::<web_sys::HtmlElement>()
        .ok()
}

/// Builds the panel's parts in `aside`, each kept up to date by its own effect: the heading,
/// the error, the member list (and its presence dots), the confirmation dialog, the invitations
/// (not in direct conversations) and the moderators' settings, filter rules and audit log.
fn build(p: Panel, aside: &web_sys::Element, direct: Computed<bool>) {
    let h2 = el(aside, "h2", "");
    effect(move || h2.set_text_content(Some(&text::people_in(&p.title.get()))));
    let error = Slot::new(aside);
    effect(move || {
        error.text_line(
            "field-error",
            "members-error",
            "alert",
            p.error.get().as_deref(),
        )
    });

    let list = Slot::new(aside);
    let dots = Rc::new(std::cell::RefCell::new(Vec::new()));
    let presence = computed(move || {
        p.client
            .chat
            .with(|c| (c.current_away(), c.current_online()))
    });
    let list_dots = dots.clone();
    effect(move || {
        let now = browser::now_ms();
        let me = p.client.chat.with_untracked(|c| c.me().clone());
        let (my_role, moderates) = (p.my_role.get_untracked(), p.moderates.get_untracked());
        let mut new_dots = Vec::new();
        let shown = p.members.with(|m| match m {
            None => line("p", "empty", "", "", t().loading),
            Some(members) => {
                let ul = new_el_with("ul", "members", "member-list");
                for m in members {
                    member_row(&ul, m, &me, my_role, moderates, now, &mut new_dots);
                }
                ul
            }
        });
        // Built again (someone joined, a role changed): a keyboard user's focus on a member's
        // button stays on that member's button.
        let focused = document().active_element().filter(|a| {
            a.closest("[data-testid=member-list]")
                .ok()
                .flatten()
                .is_some()
        });
        list.set(Some(shown));
        if let Some(again) = focused.as_ref().and_then(same_button) {
            let _ = again.focus();
        }
        presence.with_untracked(|state| paint_dots(&new_dots, state));
        *list_dots.borrow_mut() = new_dots;
    });
    effect(move || presence.with(|state| paint_dots(&dots.borrow(), state)));

    let dialog = Slot::new(aside);
    // Where the focus was when the dialog opened (the member's action button).
    let opener = Stored::new(None::<web_sys::HtmlElement>);
    effect(move || {
        let pending = p.confirm.get();
        let open = pending.is_some();
        if open {
            opener.set_value(
                document()
                    .active_element()
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()),
            );
        }
        dialog.set(pending.map(|pending| confirm_dialog(p, &pending)));
        if open {
            // Into the dialog: its first field, or its confirm button.
            focus_soon(
                "[data-testid=confirm-dialog] input, [data-testid=confirm-dialog] select, [data-testid=confirm-ok]",
            );
        } else if let Some(el) = opener.try_update_value(Option::take).flatten() {
            // The list may have been built again meanwhile: then that member's same button.
            let again = if el.is_connected() {
                Some(el)
            } else {
                same_button(&el)
            };
            if let Some(again) = again {
                let _ = again.focus();
            }
        }
    });
    // Escape closes the dialog.
    on(aside, "keydown", move |ev| {
        if crate::components::dom::key_of(&ev) != "Escape" {
            return;
        }
        if p.confirm.get_untracked().is_some() {
            ev.prevent_default();
            ev.stop_propagation();
            p.confirm.set(None);
        } else if p.invite_open.get_untracked() {
            // The invitation box first; the panel with the next Escape.
            ev.prevent_default();
            ev.stop_propagation();
            p.invite_open.set(false);
            focus_soon("[data-testid=invite-toggle]");
        }
    });

    let invite = Slot::new(aside);
    effect(move || invite.set((!direct.get()).then(|| invite_box(p))));

    let settings = Slot::new(aside);
    let filters = Slot::new(aside);
    let audit = Slot::new(aside);
    effect(move || {
        let on = p.moderates.get();
        settings.set(on.then(|| settings_form(p)));
        filters.set(on.then(|| filter_editor(p)));
        audit.set(on.then(|| audit_log(p)));
    });
}

/// A new element, not yet in the document, with a class and a test id.
fn new_el_with(tag: &str, class: &str, testid: &str) -> web_sys::Element {
    let e = new_el(tag, class);
    attrs(&e, &[("data-testid", testid)]);
    e
}

/// A `<select>` of `options` (value, label), the first one selected, appended to `parent`.
fn select(
    parent: &web_sys::Element,
    testid: &str,
    label: &str,
    options: &[(&str, &str)],
    selected: usize,
) {
    let s = el_with(parent, "select", "", testid);
    if !label.is_empty() {
        attrs(&s, &[("aria-label", label)]);
    }
    for (i, (value, label)) in options.iter().enumerate() {
        let o = el(&s, "option", "");
        attrs(&o, &[("value", value)]);
        if i == selected {
            attrs(&o, &[("selected", "")]);
        }
        text(&o, label);
    }
}

/// The value of the field with this test id inside `parent` (empty when there is none).
fn field(parent: &web_sys::Element, testid: &str) -> String {
    parent
        .query_selector(&format!("[data-testid={testid}]"))
        .ok()
        .flatten()
        .map(|f| value_of(&f))
        .unwrap_or_default()
}

/// Sets each presence dot from who is away and who is online (`member-presence`).
fn paint_dots(
    dots: &[(Username, web_sys::Element)],
    (away, online): &(Vec<Username>, Vec<Username>),
) {
    for (user, dot) in dots {
        let (state, class) = if away.contains(user) {
            ("away", "dot away")
        } else if online.contains(user) {
            (t().online, "dot on")
        } else {
            (t().offline, "dot")
        };
        dot.set_class_name(class);
        attrs(dot, &[("data-presence", state), ("title", state)]);
    }
}

/// One member, with the actions the user may take on them; its presence dot goes to `dots`.
fn member_row(
    ul: &web_sys::Element,
    m: &MemberInfo,
    me: &Username,
    my_role: Option<Role>,
    moderates: bool,
    now: i64,
    dots: &mut Vec<(Username, web_sys::Element)>,
) {
    let is_me = m.user == *me;
    let muted = m.muted_until.filter(|&u| u > now);
    // Nobody acts on an equal or higher rank, nor on themselves.
    let outranked = my_role.is_some_and(|mine| m.role < mine);
    let can_act = moderates && !is_me && outranked;
    let yes_no = |b: bool| if b { "true" } else { "false" };
    let li = el_with(ul, "li", "member", "member-item");
    attrs(
        &li,
        &[
            ("data-user", m.user.as_str()),
            ("data-role", text::role(m.role)),
            ("data-online", yes_no(m.online)),
            ("data-muted", yes_no(muted.is_some())),
        ],
    );
    dots.push((
        m.user.clone(),
        el_with(&li, "span", "dot", "member-presence"),
    ));
    let name = el_with(&li, "button", "link member-name", "member-name");
    if is_me {
        attrs(&name, &[("disabled", "")]);
    }
    text(&name, m.display_name.as_str());
    if is_me {
        text(&name, t().you);
    }
    text(
        &el_with(&li, "span", "handle", "member-handle"),
        &format!("@{}", m.user),
    );
    if m.role != Role::Member {
        text(
            &el_with(&li, "span", "tag role", "member-role"),
            text::role(m.role),
        );
    }
    if let Some(until) = muted {
        let time = browser::local_time(until, now).short;
        let tag = el_with(&li, "span", "tag muted", "member-muted");
        attrs(&tag, &[("title", &text::muted_until(&time))]);
        text(&tag, t().muted);
    }
    if can_act {
        let a = el(&li, "span", "member-actions");
        button(&a, "link", "member-kick", t().kick);
        button(&a, "link", "member-ban", t().ban);
        if muted.is_some() {
            button(&a, "link", "member-unmute", t().unmute);
        } else {
            button(&a, "link", "member-mute", t().mute);
        }
        if my_role == Some(Role::Owner) {
            if m.role == Role::Moderator {
                button(&a, "link", "member-demote", t().demote);
            } else {
                button(&a, "link", "member-promote", t().promote);
            }
        }
    }
}

/// The confirmation of a moderation action, with a reason (kick, ban, mute) and a duration
/// (mute).
fn confirm_dialog(p: Panel, pending: &Pending) -> web_sys::Element {
    p.busy.set(false);
    p.confirm_error.set(None);
    let question = match (pending.what, pending.role) {
        (Moderation::Role, Some(role)) => text::make(role, pending.name.as_str()),
        (what, _) => text::question(what, pending.name.as_str(), &p.title.get_untracked()),
    };
    let d = new_el_with("div", "dialog", "confirm-dialog");
    // Named by its question; not modal (it sits in the panel, which stays usable).
    attrs(
        &d,
        &[("role", "dialog"), ("aria-labelledby", "confirm-question")],
    );
    let q = el_with(&d, "p", "", "confirm-text");
    attrs(&q, &[("id", "confirm-question")]);
    text(&q, &question);
    if wants_reason(pending.what) {
        let input = el_with(&d, "input", "", "confirm-reason");
        attrs(
            &input,
            &[("placeholder", t().reason), ("aria-label", t().reason)],
        );
    }
    if pending.what == Moderation::Mute {
        let times: Vec<(String, &str)> = text::mute_times()
            .iter()
            .map(|(secs, label)| (secs.to_string(), *label))
            .collect();
        let options: Vec<(&str, &str)> = times.iter().map(|(v, l)| (v.as_str(), *l)).collect();
        select(&d, "confirm-duration", t().duration, &options, 1);
    }
    let buttons = el(&d, "div", "dialog-buttons");
    let ok = el_with(&buttons, "button", "danger", "confirm-ok");
    text(&ok, t().confirm);
    button(&buttons, "secondary", "confirm-cancel", t().cancel);
    let error = Slot::new(&d);
    effect(move || {
        if p.busy.get() {
            attrs(&ok, &[("disabled", "")]);
        } else {
            let _ = ok.remove_attribute("disabled");
        }
    });
    effect(move || {
        error.text_line(
            "field-error",
            "confirm-error",
            "alert",
            p.confirm_error.get().as_deref(),
        )
    });
    d
}

/// Whether an action takes a reason.
fn wants_reason(what: Moderation) -> bool {
    matches!(what, Moderation::Kick | Moderation::Ban | Moderation::Mute)
}

/// Runs the action of the dialog (`dialog`), then closes it and reads the members again.
fn run_confirmed(p: Panel, dialog: &web_sys::Element) {
    let Some(pending) = p.confirm.get_untracked() else {
        return;
    };
    let reason = field(dialog, "confirm-reason");
    let seconds = field(dialog, "confirm-duration")
        .parse()
        .unwrap_or(text::mute_times()[1].0);
    let action = ModAction {
        user: pending.user.to_string(),
        reason: (wants_reason(pending.what) && !reason.trim().is_empty())
            .then(|| reason.trim().to_owned()),
        seconds: (pending.what == Moderation::Mute).then_some(seconds),
        role: pending.role,
    };
    p.busy.set(true);
    p.confirm_error.set(None);
    spawn_local(async move {
        let result = api::moderate(p.room, pending.what, &action).await;
        p.busy.try_set(false);
        match result {
            Ok(()) => {
                p.confirm.try_set(None);
                p.reload.try_run(());
            }
            Err(e) => {
                p.confirm_error.try_set(Some(e.to_string()));
            }
        }
    });
}

/// Invites people to the room (any member): a toggle that shows the people picker.
fn invite_box(p: Panel) -> web_sys::Element {
    let d = new_el("div", "invite-box");
    let toggle = el_with(&d, "button", "secondary small", "invite-toggle");
    let picker = Slot::new(&d);
    let done = Slot::new(&d);
    effect(move || {
        let open = p.invite_open.get();
        attrs(
            &toggle,
            &[("aria-expanded", if open { "true" } else { "false" })],
        );
        toggle.set_text_content(Some(if open { t().close } else { t().invite_people }));
    });
    // The picker, built while open (its effects end with it).
    effect(move || {
        let open = p.invite_open.get();
        picker
            .set(open.then(|| untrack(|| people_picker(10, t().invite, p.invite, p.invite_error))));
    });
    effect(move || done.text_line("ok", "invite-done", "", p.invite_done.get().as_deref()));
    d
}

/// Topic and slow mode (moderators).
fn settings_form(p: Panel) -> web_sys::Element {
    let (topic, slow) = p.client.chat.with_untracked(|c| {
        c.info(p.room)
            .map(|i| (i.topic.clone(), i.slow_mode_secs))
            .unwrap_or_default()
    });
    p.saved.set(false);
    p.settings_error.set(None);
    let f = new_el_with("form", "settings", "room-settings");
    text(&el(&f, "h3", ""), t().room_settings);
    let label = el(&f, "label", "");
    text(&label, t().topic);
    set_value(&el_with(&label, "input", "", "topic-input"), &topic);
    let label = el(&f, "label", "");
    text(&label, t().slow_mode_label);
    let input = el_with(&label, "input", "", "slow-mode-input");
    attrs(&input, &[("inputmode", "numeric")]);
    set_value(&input, &slow.to_string());
    let save = el_with(&f, "button", "small", "settings-save");
    attrs(&save, &[("type", "submit")]);
    text(&save, t().save);
    let saved = Slot::new(&f);
    let error = Slot::new(&f);
    effect(move || {
        saved.set(
            p.saved
                .get()
                .then(|| line("span", "ok", "settings-saved", "", t().saved)),
        )
    });
    effect(move || {
        error.text_line(
            "field-error",
            "settings-error",
            "alert",
            p.settings_error.get().as_deref(),
        )
    });
    f
}

/// Saves the settings form `form`.
fn save_settings(p: Panel, form: &web_sys::Element) {
    p.saved.set(false);
    let Ok(secs) = field(form, "slow-mode-input").trim().parse::<u32>() else {
        p.settings_error.set(Some(t().slow_mode_number.into()));
        return;
    };
    p.settings_error.set(None);
    let settings = RoomSettings {
        topic: Some(field(form, "topic-input")),
        slow_mode_secs: Some(secs),
    };
    spawn_local(async move {
        match api::update_room(p.room, &settings).await {
            Ok(info) => {
                p.client.add_room(&info);
                p.saved.try_set(true);
            }
            Err(e) => {
                p.settings_error.try_set(Some(e.to_string()));
            }
        }
    });
}

/// The room's filter rules: list, add, delete (moderators).
fn filter_editor(p: Panel) -> web_sys::Element {
    p.rules.set(Vec::new());
    p.filter_error.set(None);
    spawn_local(async move {
        match api::filters(p.room).await {
            Ok(list) => {
                p.rules.try_set(list);
            }
            Err(e) => {
                p.filter_error.try_set(Some(e.to_string()));
            }
        }
    });
    let d = new_el_with("div", "filters", "filter-editor");
    text(&el(&d, "h3", ""), t().filters);
    let empty = Slot::new(&d);
    let ul = el(&d, "ul", "");
    let f = el(&d, "form", "filter-add");
    select(
        &f,
        "filter-kind",
        t().pattern,
        &[("keyword", t().keyword), ("regex", t().regex)],
        0,
    );
    let input = el_with(&f, "input", "", "filter-pattern");
    attrs(
        &input,
        &[("placeholder", t().pattern), ("aria-label", t().pattern)],
    );
    select(
        &f,
        "filter-action",
        t().filter_action,
        &[("refuse", t().refuse), ("mask", t().mask)],
        0,
    );
    let add = el_with(&f, "button", "small", "filter-add");
    attrs(&add, &[("type", "submit")]);
    text(&add, t().add_rule);
    let error = Slot::new(&d);
    effect(move || {
        p.rules.with(|rules| {
            empty.set(
                rules
                    .is_empty()
                    .then(|| line("p", "empty", "", "", t().no_filters)),
            );
            ul.set_text_content(None);
            for r in rules {
                let li = el_with(&ul, "li", "", "filter-item");
                attrs(&li, &[("data-rule-id", &r.id.to_string())]);
                text(&el(&li, "code", ""), &r.pattern);
                text(&el(&li, "span", "tag"), text::rule(r.kind, r.action));
                button(&li, "link", "filter-delete", t().delete);
            }
        })
    });
    effect(move || {
        error.text_line(
            "field-error",
            "filter-error",
            "alert",
            p.filter_error.get().as_deref(),
        )
    });
    d
}

/// Adds the rule of the form `form`.
fn add_filter(p: Panel, form: &web_sys::Element) {
    let rule = NewFilter {
        kind: if field(form, "filter-kind") == "regex" {
            FilterKind::Regex
        } else {
            FilterKind::Keyword
        },
        pattern: field(form, "filter-pattern"),
        action: if field(form, "filter-action") == "mask" {
            FilterAction::Mask
        } else {
            FilterAction::Refuse
        },
    };
    if rule.pattern.trim().is_empty() {
        return;
    }
    p.filter_error.set(None);
    let input = form
        .query_selector("[data-testid=filter-pattern]")
        .ok()
        .flatten();
    spawn_local(async move {
        match api::add_filter(p.room, &rule).await {
            Ok(added) => {
                p.rules.try_update(|r| r.push(added));
                if let Some(input) = input {
                    set_value(&input, "");
                }
            }
            Err(e) => {
                let shown = match &e {
                    // The parser's own words say where a pattern goes wrong: kept (they are
                    // technical, in any language), after the reason in the page's language.
                    api::Failure::Http {
                        code: Some(shared::ErrorCode::Invalid),
                        message,
                        ..
                    } if !message.is_empty() && crate::i18n::lang() != crate::i18n::Lang::En => {
                        crate::i18n::fill(t().err_bad_rule, &[("detail", message)])
                    }
                    _ => e.to_string(),
                };
                p.filter_error.try_set(Some(shown));
            }
        }
    });
}

/// Deletes the rule `id`.
fn delete_filter(p: Panel, id: i64) {
    spawn_local(async move {
        match api::delete_filter(p.room, id).await {
            Ok(()) => {
                p.rules.try_update(|r| r.retain(|x| x.id != id));
            }
            Err(e) => {
                p.filter_error.try_set(Some(e.to_string()));
            }
        }
    });
}

/// The room's audit log, newest first (moderators); read again with each change of members.
fn audit_log(p: Panel) -> web_sys::Element {
    p.audit.set(Vec::new());
    p.audit_error.set(None);
    let d = new_el_with("div", "audit", "audit-log");
    let h = el(&d, "h3", "");
    text(&h, t().audit);
    text(&h, " ");
    button(&h, "link", "audit-refresh", t().refresh);
    let error = Slot::new(&d);
    let empty = Slot::new(&d);
    let ul = el(&d, "ul", "");
    effect(move || {
        let _ = p.rev.get();
        reload_audit(p);
    });
    effect(move || error.text_line("field-error", "", "", p.audit_error.get().as_deref()));
    effect(move || {
        p.audit.with(|entries| {
            empty.set(
                entries
                    .is_empty()
                    .then(|| line("p", "empty", "", "", t().nothing_yet)),
            );
            ul.set_text_content(None);
            for e in entries {
                let time = browser::local_time(e.ts, browser::now_ms());
                let li = el_with(&ul, "li", "", "audit-item");
                attrs(&li, &[("data-action", &e.action)]);
                let t = el(&li, "time", "");
                attrs(&t, &[("datetime", &time.iso), ("title", &time.full)]);
                text(&t, &time.short);
                text(&li, " ");
                let line = text::audit_line(
                    e.actor.as_str(),
                    &e.action,
                    e.target.as_ref().map(Username::as_str),
                );
                text(&el(&li, "span", ""), &line);
                let extra: Vec<&str> = [e.detail.as_deref(), e.reason.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if !extra.is_empty() {
                    text(
                        &el(&li, "span", "detail"),
                        &format!(" ({})", extra.join("; ")),
                    );
                }
            }
        })
    });
    d
}

/// Reads the audit log again.
fn reload_audit(p: Panel) {
    spawn_local(async move {
        match api::audit(p.room).await {
            Ok(list) => {
                p.audit.try_set(list);
                p.audit_error.try_set(None);
            }
            Err(e) => {
                p.audit_error.try_set(Some(e.to_string()));
            }
        }
    });
}

/// The panel's clicks, by the test id of the button clicked.
fn on_click(p: Panel, ev: &web_sys::Event) {
    let Some(btn) = target(ev, "button[data-testid]") else {
        return;
    };
    let row = btn.closest("li").ok().flatten();
    let member = || {
        let user = row.as_ref()?.get_attribute("data-user")?;
        p.members.with_untracked(|m| {
            m.as_ref()?
                .iter()
                .find(|m| m.user.as_str() == user)
                .cloned()
        })
    };
    let ask = |what: Moderation, role: Option<Role>| {
        if let Some(m) = member() {
            p.confirm.set(Some(Pending {
                what,
                user: m.user,
                name: m.display_name,
                role,
            }));
        }
    };
    match btn
        .get_attribute("data-testid")
        .unwrap_or_default()
        .as_str()
    {
        "member-name" => {
            if let Some(m) = member() {
                let client = p.client;
                spawn_local(async move {
                    if let Err(e) = client.open_direct(vec![(m.user, m.display_name)]).await {
                        client.chat.try_update(|c| c.set_error(e));
                    }
                });
            }
        }
        "member-kick" => ask(Moderation::Kick, None),
        "member-ban" => ask(Moderation::Ban, None),
        "member-mute" => ask(Moderation::Mute, None),
        "member-unmute" => ask(Moderation::Unmute, None),
        "member-promote" => ask(Moderation::Role, Some(Role::Moderator)),
        "member-demote" => ask(Moderation::Role, Some(Role::Member)),
        "confirm-ok" => {
            if let Some(dialog) = btn.closest(".dialog").ok().flatten() {
                run_confirmed(p, &dialog);
            }
        }
        "confirm-cancel" => p.confirm.set(None),
        "invite-toggle" => p.invite_open.update(|o| *o = !*o),
        "filter-delete" => {
            let id = row.and_then(|r| r.get_attribute("data-rule-id"));
            if let Some(id) = id.and_then(|id| id.parse().ok()) {
                delete_filter(p, id);
            }
        }
        "audit-refresh" => reload_audit(p),
        _ => {}
    }
}

/// The panel's form submissions (settings, a new filter rule).
fn on_submit(p: Panel, ev: &web_sys::Event) {
    let Some(form) = target(ev, "form") else {
        return;
    };
    if form.get_attribute("data-testid").as_deref() == Some("room-settings") {
        ev.prevent_default();
        save_settings(p, &form);
    } else if form.class_name() == "filter-add" {
        ev.prevent_default();
        add_filter(p, &form);
    }
}

/// The panel's typing: a changed setting is no longer "saved"; a changed pattern clears the
/// rule's error.
fn on_input(p: Panel, ev: &web_sys::Event) {
    let Some((_, id)) = tested(ev) else {
        return;
    };
    match id.as_str() {
        "topic-input" | "slow-mode-input" => p.saved.set(false),
        "filter-pattern" => p.filter_error.set(None),
        _ => {}
    }
}
