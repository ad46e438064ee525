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

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{
    AuditEntry, DisplayName, FilterAction, FilterKind, FilterRule, MemberInfo, ModAction,
    NewFilter, Role, RoomId, RoomSettings, Username,
};

use crate::api::{self, Moderation};
use crate::browser;
use crate::client::Client;
use crate::components::{
    PeoplePicker, click, dyn_fn, dyn_opt, dyn_text, dyn_view, memo_fn, on_event, submit_handler,
    text_line,
};

/// The panel's words.
mod text {
    use shared::Role;

    use crate::api::Moderation;

    pub const LOADING: &str = "Loading…";
    pub const YOU: &str = " (you)";
    pub const MUTED: &str = "muted";
    pub const ONLINE: &str = "online";
    pub const OFFLINE: &str = "offline";
    pub const KICK: &str = "Kick";
    pub const BAN: &str = "Ban";
    pub const MUTE: &str = "Mute";
    pub const UNMUTE: &str = "Unmute";
    pub const PROMOTE: &str = "Make moderator";
    pub const DEMOTE: &str = "Remove moderator";
    pub const CONFIRM: &str = "Confirm";
    pub const CANCEL: &str = "Cancel";
    pub const REASON: &str = "Reason (optional)";
    pub const DURATION: &str = "For how long";
    pub const INVITE: &str = "Invite people";
    pub const INVITE_CLOSE: &str = "Close";
    pub const INVITE_ACTION: &str = "Invite";
    pub const SETTINGS: &str = "Room settings";
    pub const TOPIC: &str = "Topic";
    pub const SLOW_MODE: &str = "Slow mode (seconds between posts, 0 = off)";
    pub const SAVE: &str = "Save";
    pub const SAVED: &str = "Saved.";
    pub const FILTERS: &str = "Filter rules";
    pub const NO_FILTERS: &str = "No rules.";
    pub const KEYWORD: &str = "Keyword";
    pub const REGEX: &str = "Regular expression";
    pub const REFUSE: &str = "Refuse the message";
    pub const MASK: &str = "Mask the match";
    pub const PATTERN: &str = "Word or pattern";
    pub const ADD: &str = "Add rule";
    pub const DELETE: &str = "Delete";
    pub const AUDIT: &str = "Audit log";
    pub const NO_AUDIT: &str = "Nothing yet.";
    pub const REFRESH: &str = "Refresh";
    pub const SLOW_MODE_NUMBER: &str = "Slow mode must be a whole number of seconds.";
    pub const MUTE_TIMES: [(u32, &str); 4] = [
        (60, "1 minute"),
        (600, "10 minutes"),
        (3_600, "1 hour"),
        (86_400, "1 day"),
    ];

    pub fn role(role: Role) -> &'static str {
        match role {
            Role::Member | Role::Unknown => "member",
            Role::Moderator => "moderator",
            Role::Owner => "owner",
        }
    }

    pub fn people_in(room: &str) -> String {
        format!("People in {room}")
    }

    pub fn invited(names: &[String]) -> String {
        format!("Invited {}.", names.join(", "))
    }

    pub fn question(what: Moderation, name: &str, room: &str) -> String {
        match what {
            Moderation::Kick => format!("Remove {name} from {room}? They may come back."),
            Moderation::Ban => format!("Ban {name} from {room}? They cannot come back."),
            Moderation::Unban => format!("Lift the ban of {name} in {room}?"),
            Moderation::Mute => format!("Mute {name} in {room}?"),
            Moderation::Unmute => format!("Let {name} post in {room} again?"),
            Moderation::Role => format!("Change the role of {name} in {room}?"),
        }
    }

    pub fn make(role: Role, name: &str) -> String {
        match role {
            Role::Moderator => format!("Make {name} a moderator?"),
            _ => format!("Make {name} an ordinary member again?"),
        }
    }

    pub fn muted_until(time: &str) -> String {
        format!("muted until {time}")
    }

    pub fn rule(kind: shared::FilterKind, action: shared::FilterAction) -> &'static str {
        use shared::{FilterAction, FilterKind};
        match (kind, action) {
            (FilterKind::Keyword, FilterAction::Refuse) => "keyword, refuses",
            (FilterKind::Keyword, FilterAction::Mask) => "keyword, masks",
            (FilterKind::Regex, FilterAction::Refuse) => "regex, refuses",
            (FilterKind::Regex, FilterAction::Mask) => "regex, masks",
            _ => "a newer kind of rule",
        }
    }

    pub fn audit_line(actor: &str, action: &str, target: Option<&str>) -> String {
        match target {
            Some(t) => format!("{actor}: {action} {t}"),
            None => format!("{actor}: {action}"),
        }
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

/// The member panel of `room` (mounted again for each room).
#[component]
pub fn MemberPanel(
    /// The room.
    room: RoomId,
) -> impl IntoView {
    let client = expect_context::<Client>();
    let me = client.chat.with_untracked(|c| c.me().clone());
    let title = Memo::new(memo_fn(move |_| client.chat.with(|c| c.room_title(room))));
    let my_role = Memo::new(memo_fn(move |_| client.chat.with(|c| c.role(room))));
    let direct = Memo::new(memo_fn(move |_| client.chat.with(|c| c.is_direct(room))));
    let moderates = Memo::new(memo_fn(move |_| {
        !direct.get() && my_role.get().is_some_and(|r| r >= Role::Moderator)
    }));
    let rev = Memo::new(memo_fn(move |_| client.chat.with(|c| c.members_rev(room))));
    let members = RwSignal::new(None::<Vec<MemberInfo>>);
    let error = RwSignal::new(None::<String>);
    let generation = StoredValue::new(0u64);

    let load = {
        let me = me.clone();
        move || {
            let Some(mine) = generation.try_update_value(|g| {
                *g += 1;
                *g
            }) else {
                return;
            };
            let me = me.clone();
            spawn_local(async move {
                let got = api::members(room).await;
                if generation.try_get_value() != Some(mine) {
                    return;
                }
                match got {
                    Ok(mut list) => {
                        list.sort_by_key(|m| {
                            (
                                std::cmp::Reverse(m.role),
                                m.display_name.as_str().to_lowercase(),
                            )
                        });
                        client.chat.try_update(|c| {
                            c.learn_people(
                                list.iter()
                                    .map(|m| (m.user.clone(), m.display_name.clone())),
                            );
                            let own = list.iter().find(|m| m.user == me);
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
        }
    };
    let load_again = load.clone();
    // Who is online changes the dots: read the list again then too.
    let online = Memo::new(memo_fn(move |_| {
        client
            .chat
            .with(|c| c.room(room).map(|r| r.online.clone()).unwrap_or_default())
    }));
    Effect::new(move |_| {
        // Read, not only tracked: a memo recomputes when read.
        let _ = (rev.get(), online.get());
        load();
    });

    let confirm = RwSignal::new(None::<Pending>);
    let ask = Callback::new(move |p: Pending| confirm.set(Some(p)));
    let on_done = Callback::new(move |()| {
        confirm.set(None);
        load_again();
    });
    let on_dm = Callback::new(move |(user, name): (Username, DisplayName)| {
        spawn_local(async move {
            if let Err(e) = client.open_direct(vec![(user, name)]).await {
                client.chat.try_update(|c| c.set_error(e));
            }
        });
    });

    view! {
        <aside class="member-panel" data-testid="member-panel" data-room-id=room.to_string()>
            <h2>{dyn_text(move || text::people_in(&title.get()))}</h2>
            {text_line("field-error", "members-error", "alert", Signal::from(error))}
            {dyn_view(move || match members.get() {
                None => view! { <p class="empty">{text::LOADING}</p> }.into_any(),
                Some(list) => {
                    let me = me.clone();
                    view! {
                        <ul class="members" data-testid="member-list">
                            {list
                                .into_iter()
                                .map(|m| {
                                    view! {
                                        <MemberRow
                                            member=m
                                            me=me.clone()
                                            my_role=my_role.get_untracked()
                                            moderates=moderates.get_untracked()
                                            ask
                                            on_dm
                                        />
                                    }
                                })
                                .collect_view()}
                        </ul>
                    }
                        .into_any()
                }
            })}
            {dyn_opt(move || {
                confirm
                    .get()
                    .map(|p| {
                        view! { <ConfirmDialog room title=title.get_untracked() pending=p confirm on_done /> }.into_any()
                    })
            })}
            {dyn_opt(move || (!direct.get()).then(|| view! { <InviteBox room /> }.into_any()))}
            {dyn_opt(move || {
                moderates
                    .get()
                    .then(|| {
                        view! {
                            <SettingsForm room />
                            <FilterEditor room />
                            <AuditLog room rev />
                        }.into_any()
                    })
            })}
        </aside>
    }
}

/// One member, with the actions the user may take on them.
#[component]
fn MemberRow(
    member: MemberInfo,
    me: Username,
    my_role: Option<Role>,
    moderates: bool,
    ask: Callback<Pending>,
    on_dm: Callback<(Username, DisplayName)>,
) -> impl IntoView {
    let is_me = member.user == me;
    let now = browser::now_ms();
    let muted = member.muted_until.filter(|&u| u > now);
    // Nobody acts on an equal or higher rank, nor on themselves.
    let outranked = my_role.is_some_and(|mine| member.role < mine);
    let can_act = moderates && !is_me && outranked;
    let owner = my_role == Some(Role::Owner);
    let user = member.user.clone();
    let name = member.display_name.clone();
    let pending = move |what: Moderation, role: Option<Role>| Pending {
        what,
        user: user.clone(),
        name: name.clone(),
        role,
    };
    let actions = can_act.then(|| {
        let p = pending.clone();
        let kick = move |_| ask.run(p(Moderation::Kick, None));
        let p = pending.clone();
        let ban = move |_| ask.run(p(Moderation::Ban, None));
        let p = pending.clone();
        let mute_or_unmute = move |_| {
            let what = if muted.is_some() {
                Moderation::Unmute
            } else {
                Moderation::Mute
            };
            ask.run(p(what, None));
        };
        let (mute_id, mute_label) = if muted.is_some() {
            ("member-unmute", text::UNMUTE)
        } else {
            ("member-mute", text::MUTE)
        };
        let p = pending.clone();
        let is_mod = member.role == Role::Moderator;
        let role = owner.then(|| {
            let (id, label, new_role) = if is_mod {
                ("member-demote", text::DEMOTE, Role::Member)
            } else {
                ("member-promote", text::PROMOTE, Role::Moderator)
            };
            view! {
                <button
                    class="link"
                    data-testid=id
                    on:click=click(move |_| ask.run(p(Moderation::Role, Some(new_role))))
                >
                    {label}
                </button>
            }
        });
        view! {
            <span class="member-actions">
                <button class="link" data-testid="member-kick" on:click=click(kick)>
                    {text::KICK}
                </button>
                <button class="link" data-testid="member-ban" on:click=click(ban)>
                    {text::BAN}
                </button>
                <button class="link" data-testid=mute_id on:click=click(mute_or_unmute)>
                    {mute_label}
                </button>
                {role}
            </span>
        }
    });
    let dm_user = member.user.clone();
    let dm_name = member.display_name.clone();
    let muted_mark = muted.map(|until| {
        let time = browser::local_time(until, now).short;
        view! {
            <span class="tag muted" data-testid="member-muted" title=text::muted_until(&time)>
                {text::MUTED}
            </span>
        }
    });
    view! {
        <li
            class="member"
            data-testid="member-item"
            data-user=member.user.to_string()
            data-role=text::role(member.role)
            data-online=member.online.to_string()
            data-muted=muted.is_some().to_string()
        >
            {presence_dot(member.user.clone())}
            <button
                class="link member-name"
                data-testid="member-name"
                disabled=is_me
                on:click=click(move |_| on_dm.run((dm_user.clone(), dm_name.clone())))
            >
                {member.display_name.to_string()}
                {is_me.then_some(text::YOU)}
            </button>
            <span class="handle" data-testid="member-handle">
                {format!("@{}", member.user)}
            </span>
            {(member.role != Role::Member)
                .then(|| {
                    view! {
                        <span class="tag role" data-testid="member-role">
                            {text::role(member.role)}
                        </span>
                    }
                })}
            {muted_mark}
            {actions}
        </li>
    }
}

/// The confirmation of a moderation action, with a reason (kick, ban, mute) and a duration
/// (mute).
#[component]
fn ConfirmDialog(
    room: RoomId,
    title: String,
    pending: Pending,
    confirm: RwSignal<Option<Pending>>,
    on_done: Callback<()>,
) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let seconds = RwSignal::new(text::MUTE_TIMES[1].0);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let question = match (pending.what, pending.role) {
        (Moderation::Role, Some(role)) => text::make(role, pending.name.as_str()),
        (what, _) => text::question(what, pending.name.as_str(), &title),
    };
    let wants_reason = matches!(
        pending.what,
        Moderation::Kick | Moderation::Ban | Moderation::Mute
    );
    let is_mute = pending.what == Moderation::Mute;
    let p = pending.clone();
    let run = move || {
        let reason_text = reason.get_untracked();
        let action = ModAction {
            user: p.user.to_string(),
            reason: (wants_reason && !reason_text.trim().is_empty())
                .then(|| reason_text.trim().to_owned()),
            seconds: is_mute.then(|| seconds.get_untracked()),
            role: p.role,
        };
        let what = p.what;
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let result = api::moderate(room, what, &action).await;
            busy.try_set(false);
            match result {
                Ok(()) => on_done.run(()),
                Err(e) => {
                    error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    view! {
        <div class="dialog" data-testid="confirm-dialog" role="dialog" aria-modal="true">
            <p data-testid="confirm-text">{question}</p>
            {wants_reason
                .then(|| {
                    view! {
                        <input
                            data-testid="confirm-reason"
                            placeholder=text::REASON
                            aria-label=text::REASON
                            prop:value=move || reason.get()
                            on:input=on_event(move |ev| reason.set(event_target_value(&ev)))
                        />
                    }
                })}
            {is_mute
                .then(|| {
                    view! {
                        <select
                            data-testid="confirm-duration"
                            aria-label=text::DURATION
                            on:change=on_event(move |ev| {
                                if let Ok(s) = event_target_value(&ev).parse() {
                                    seconds.set(s);
                                }
                            })
                        >
                            {text::MUTE_TIMES
                                .iter()
                                .map(|(secs, label)| {
                                    view! {
                                        <option
                                            value=secs.to_string()
                                            selected=*secs == text::MUTE_TIMES[1].0
                                        >
                                            {*label}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                    }
                })}
            <div class="dialog-buttons">
                <button
                    class="danger"
                    data-testid="confirm-ok"
                    disabled=move || busy.get()
                    on:click=click(move |_| run())
                >
                    {text::CONFIRM}
                </button>
                <button
                    class="secondary"
                    data-testid="confirm-cancel"
                    on:click=click(move |_| confirm.set(None))
                >
                    {text::CANCEL}
                </button>
            </div>
            {text_line("field-error", "confirm-error", "alert", Signal::from(error))}
        </div>
    }
}

/// Invites people to the room (any member).
#[component]
fn InviteBox(room: RoomId) -> impl IntoView {
    let open = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let on_submit = Callback::new(move |people: Vec<(Username, DisplayName)>| {
        error.set(None);
        done.set(None);
        spawn_local(async move {
            let mut invited = Vec::new();
            for (user, name) in people {
                match api::invite(room, user.as_str()).await {
                    Ok(()) => invited.push(name.to_string()),
                    Err(e) => {
                        error.try_set(Some(e.to_string()));
                    }
                }
            }
            if !invited.is_empty() {
                done.try_set(Some(text::invited(&invited)));
                open.try_set(false);
            }
        });
    });
    view! {
        <div class="invite-box">
            <button
                class="secondary small"
                data-testid="invite-toggle"
                aria-expanded=move || open.get().to_string()
                on:click=click(move |_| open.update(|o| *o = !*o))
            >
                {dyn_fn(move || if open.get() { text::INVITE_CLOSE } else { text::INVITE })}
            </button>
            {dyn_opt(move || {
                open.get()
                    .then(|| {
                        view! {
                            <PeoplePicker
                                max=10
                                action=text::INVITE_ACTION
                                on_submit
                                error
                            />
                        }.into_any()
                    })
            })}
            {dyn_opt(move || {
                done.get().map(|d| view! { <p class="ok" data-testid="invite-done">{d}</p> }.into_any())
            })}
        </div>
    }
}

/// Topic and slow mode (moderators).
#[component]
fn SettingsForm(room: RoomId) -> impl IntoView {
    let client = expect_context::<Client>();
    let (topic0, slow0) = client.chat.with_untracked(|c| {
        c.info(room)
            .map(|i| (i.topic.clone(), i.slow_mode_secs))
            .unwrap_or_default()
    });
    let topic = RwSignal::new(topic0);
    let slow = RwSignal::new(slow0.to_string());
    let error = RwSignal::new(None::<String>);
    let saved = RwSignal::new(false);
    let save = move || {
        saved.set(false);
        let Ok(secs) = slow.get_untracked().trim().parse::<u32>() else {
            error.set(Some(text::SLOW_MODE_NUMBER.into()));
            return;
        };
        error.set(None);
        let settings = RoomSettings {
            topic: Some(topic.get_untracked()),
            slow_mode_secs: Some(secs),
        };
        spawn_local(async move {
            match api::update_room(room, &settings).await {
                Ok(info) => {
                    client.add_room(&info);
                    saved.try_set(true);
                }
                Err(e) => {
                    error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    view! {
        <form
            class="settings"
            data-testid="room-settings"
            on:submit=submit_handler(move |ev| {
                ev.prevent_default();
                save();
            })
        >
            <h3>{text::SETTINGS}</h3>
            <label>
                {text::TOPIC}
                <input
                    data-testid="topic-input"
                    prop:value=move || topic.get()
                    on:input=on_event(move |ev| {
                        topic.set(event_target_value(&ev));
                        saved.set(false);
                    })
                />
            </label>
            <label>
                {text::SLOW_MODE}
                <input
                    data-testid="slow-mode-input"
                    inputmode="numeric"
                    prop:value=move || slow.get()
                    on:input=on_event(move |ev| {
                        slow.set(event_target_value(&ev));
                        saved.set(false);
                    })
                />
            </label>
            <button type="submit" class="small" data-testid="settings-save">
                {text::SAVE}
            </button>
            {dyn_opt(move || saved.get().then(|| view! { <span class="ok" data-testid="settings-saved">{text::SAVED}</span> }.into_any()))}
            {text_line("field-error", "settings-error", "alert", Signal::from(error))}
        </form>
    }
}

/// The room's filter rules: list, add, delete (moderators).
#[component]
fn FilterEditor(room: RoomId) -> impl IntoView {
    let rules = RwSignal::new(Vec::<FilterRule>::new());
    let error = RwSignal::new(None::<String>);
    let pattern = RwSignal::new(String::new());
    let kind = RwSignal::new(FilterKind::Keyword);
    let action = RwSignal::new(FilterAction::Refuse);
    let reload = move || {
        spawn_local(async move {
            match api::filters(room).await {
                Ok(list) => {
                    rules.try_set(list);
                }
                Err(e) => {
                    error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    reload();
    let add = move || {
        let rule = NewFilter {
            kind: kind.get_untracked(),
            pattern: pattern.get_untracked(),
            action: action.get_untracked(),
        };
        if rule.pattern.trim().is_empty() {
            return;
        }
        error.set(None);
        spawn_local(async move {
            match api::add_filter(room, &rule).await {
                Ok(added) => {
                    rules.try_update(|r| r.push(added));
                    pattern.try_set(String::new());
                }
                Err(e) => {
                    error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    let delete = move |id: i64| {
        spawn_local(async move {
            match api::delete_filter(room, id).await {
                Ok(()) => {
                    rules.try_update(|r| r.retain(|x| x.id != id));
                }
                Err(e) => {
                    error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    view! {
        <div class="filters" data-testid="filter-editor">
            <h3>{text::FILTERS}</h3>
            {dyn_opt(move || {
                rules.with(Vec::is_empty).then(|| view! { <p class="empty">{text::NO_FILTERS}</p> }.into_any())
            })}
            <ul>
                {dyn_view(move || {
                    rules.get().into_iter().map(|r| {
                        let id = r.id;
                        view! {
                            <li data-testid="filter-item" data-rule-id=id.to_string()>
                                <code>{r.pattern.clone()}</code>
                                <span class="tag">{text::rule(r.kind, r.action)}</span>
                                <button
                                    class="link"
                                    data-testid="filter-delete"
                                    on:click=click(move |_| delete(id))
                                >
                                    {text::DELETE}
                                </button>
                            </li>
                        }
                    })
                    .collect_view()
                    .into_any()
                })}
            </ul>
            <form
                class="filter-add"
                on:submit=submit_handler(move |ev| {
                    ev.prevent_default();
                    add();
                })
            >
                <select
                    data-testid="filter-kind"
                    aria-label=text::PATTERN
                    on:change=on_event(move |ev| {
                        kind.set(
                            if event_target_value(&ev) == "regex" {
                                FilterKind::Regex
                            } else {
                                FilterKind::Keyword
                            },
                        );
                    })
                >
                    <option value="keyword" selected=true>
                        {text::KEYWORD}
                    </option>
                    <option value="regex">{text::REGEX}</option>
                </select>
                <input
                    data-testid="filter-pattern"
                    placeholder=text::PATTERN
                    aria-label=text::PATTERN
                    prop:value=move || pattern.get()
                    on:input=on_event(move |ev| {
                        pattern.set(event_target_value(&ev));
                        error.set(None);
                    })
                />
                <select
                    data-testid="filter-action"
                    on:change=on_event(move |ev| {
                        action.set(
                            if event_target_value(&ev) == "mask" {
                                FilterAction::Mask
                            } else {
                                FilterAction::Refuse
                            },
                        );
                    })
                >
                    <option value="refuse" selected=true>
                        {text::REFUSE}
                    </option>
                    <option value="mask">{text::MASK}</option>
                </select>
                <button type="submit" class="small" data-testid="filter-add">
                    {text::ADD}
                </button>
            </form>
            {text_line("field-error", "filter-error", "alert", Signal::from(error))}
        </div>
    }
}

/// The room's audit log, newest first (moderators); read again with each change of members.
#[component]
fn AuditLog(room: RoomId, rev: Memo<u64>) -> impl IntoView {
    let entries = RwSignal::new(Vec::<AuditEntry>::new());
    let error = RwSignal::new(None::<String>);
    let reload = move || {
        spawn_local(async move {
            match api::audit(room).await {
                Ok(list) => {
                    entries.try_set(list);
                    error.try_set(None);
                }
                Err(e) => {
                    error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    Effect::new(move |_| {
        let _ = rev.get();
        reload();
    });
    view! {
        <div class="audit" data-testid="audit-log">
            <h3>
                {text::AUDIT}
                " "
                <button class="link" data-testid="audit-refresh" on:click=click(move |_| reload())>
                    {text::REFRESH}
                </button>
            </h3>
            {dyn_opt(move || error.get().map(|e| view! { <p class="field-error">{e}</p> }.into_any()))}
            {dyn_opt(move || {
                entries.with(Vec::is_empty).then(|| view! { <p class="empty">{text::NO_AUDIT}</p> }.into_any())
            })}
            <ul>
                {dyn_view(move || {
                    entries.get().into_iter().map(|e| {
                        let time = browser::local_time(e.ts, browser::now_ms());
                        let line = text::audit_line(
                            e.actor.as_str(),
                            &e.action,
                            e.target.as_ref().map(Username::as_str),
                        );
                        let extra: Vec<String> = [e.detail.clone(), e.reason.clone()]
                            .into_iter()
                            .flatten()
                            .collect();
                        view! {
                            <li data-testid="audit-item" data-action=e.action.clone()>
                                <time datetime=time.iso title=time.full>
                                    {time.short}
                                </time>
                                " "
                                <span>{line}</span>
                                {(!extra.is_empty())
                                    .then(|| {
                                        view! { <span class="detail">{format!(" ({})", extra.join("; "))}</span> }
                                    })}
                            </li>
                        }
                    })
                    .collect_view()
                    .into_any()
                })}
            </ul>
        </div>
    }
}

/// A member's presence, live from the room's `presence` frames: `online`, `away` or `offline`
/// (`member-presence`, `data-presence`).
fn presence_dot(user: Username) -> impl IntoView {
    let client = expect_context::<Client>();
    let state = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| {
            if c.current_away().contains(&user) {
                "away"
            } else if c.current_online().contains(&user) {
                text::ONLINE
            } else {
                text::OFFLINE
            }
        })
    }));
    view! {
        <span
            class=move || match state.get() {
                text::ONLINE => "dot on",
                "away" => "dot away",
                _ => "dot",
            }
            data-testid="member-presence"
            data-presence=state
            title=state
        ></span>
    }
}
