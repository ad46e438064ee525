//! Every string a person reads, in English and Simplified Chinese.
//!
//! The catalogue is a struct with one field per string, written by the [`catalogue!`] macro
//! from lines that carry both languages: a string without its translation does not match the
//! macro's pattern, and a view that names a string the catalogue lacks does not compile, so a
//! missing key is a build error, never an empty label. Strings with parts filled in at run time
//! name them in braces (`{name}`), filled by [`fill`]; a test checks that both languages use
//! the same names.
//!
//! The language is chosen once when the app starts ([`init`]): the person's own choice if they
//! made one in the app (kept in `localStorage`), else the first of the browser's languages
//! (`navigator.languages`) that we have, else English. Switching reloads the page, as Element
//! does, so that every view is built once in one language; drafts and the outbox survive a
//! reload already. Dates and times are formatted by the browser's `Intl` for the language (see
//! [`crate::browser::local_time`]), so no locale data ships in the bundle.
//!
//! Adding a language: a new [`Lang`] variant, a column in every line of the catalogue (the
//! macro then refuses to build until every string has it), and its entry in [`Lang::ALL`].

use std::cell::Cell;

use shared::ErrorCode;

/// A language the app speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// Every language, in the order the switcher offers them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// The BCP 47 tag: the `lang` attribute of the page and the locale given to `Intl`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The language's name in itself, as the switcher shows it.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "简体中文",
        }
    }

    /// The language a tag asks for, if we have it: `zh`, `zh-CN`, `zh-Hans`, `zh-SG` are
    /// Simplified Chinese; `en` and any `en-*` are English. Traditional Chinese (`zh-TW`,
    /// `zh-HK`, `zh-Hant`) is not offered as Simplified: it falls through to the next choice.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase();
        let mut parts = tag.split(['-', '_']);
        match parts.next()? {
            "en" => Some(Lang::En),
            "zh" => {
                let rest: Vec<&str> = parts.collect();
                let traditional = rest
                    .iter()
                    .any(|p| matches!(*p, "hant" | "tw" | "hk" | "mo"));
                (!traditional).then_some(Lang::Zh)
            }
            _ => None,
        }
    }

    /// The language to use: the stored choice if valid, else the first browser language we
    /// have, else English.
    pub fn choose<'a>(stored: Option<&str>, browser: impl IntoIterator<Item = &'a str>) -> Lang {
        stored
            .and_then(Lang::from_tag)
            .or_else(|| browser.into_iter().find_map(Lang::from_tag))
            .unwrap_or(Lang::En)
    }
}

thread_local! {
    static LANG: Cell<Lang> = const { Cell::new(Lang::En) };
}

/// The language of this page.
pub fn lang() -> Lang {
    LANG.with(Cell::get)
}

/// Sets the language of this page (views built afterwards use it). Tests and [`init`] call it.
pub fn set_lang(lang: Lang) {
    LANG.with(|l| l.set(lang));
}

/// The strings in the language of this page.
pub fn t() -> &'static Text {
    match lang() {
        Lang::En => &EN,
        Lang::Zh => &ZH,
    }
}

/// Replaces each `{name}` in `template` with its value.
pub fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match args.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The words for a refusal with this code, in the page's language. In English the server's own
/// words are kept when there are some (they say more: which rule, until when); in any other
/// language the catalogue's words for the code are used, so nothing shows in a language the
/// person did not choose.
pub fn error_text(code: ErrorCode, server_message: &str) -> String {
    if lang() == Lang::En && !server_message.trim().is_empty() {
        return server_message.to_owned();
    }
    let t = t();
    match code {
        ErrorCode::BadFrame => t.err_bad_frame,
        ErrorCode::Invalid => t.err_invalid,
        ErrorCode::TooLong => t.err_too_long,
        ErrorCode::NoSuchRoom => t.err_no_such_room,
        ErrorCode::NoSuchMessage => t.err_no_such_message,
        ErrorCode::NotJoined => t.err_not_joined,
        ErrorCode::Forbidden => t.err_forbidden,
        ErrorCode::Conflict => t.err_conflict,
        ErrorCode::Banned => t.err_banned,
        ErrorCode::Muted => t.err_muted,
        ErrorCode::SlowMode => t.err_slow_mode,
        ErrorCode::Filtered => t.err_filtered,
        ErrorCode::NoSuchUser => t.err_no_such_user,
        ErrorCode::NoSuchFile => t.err_no_such_file,
        ErrorCode::RateLimited => t.err_rate_limited,
        ErrorCode::Internal => t.err_internal,
        ErrorCode::Unknown => t.err_unknown,
    }
    .to_owned()
}

/// The words for a refused upload (`error` is the [`shared::ApiError::error`] of the answer,
/// `status` its HTTP status), in the page's language: the server's own words in English (they
/// say the limit), the catalogue's otherwise.
pub fn upload_error_text(
    status: u16,
    error: &str,
    code: Option<ErrorCode>,
    message: &str,
) -> String {
    if let Some(code) = code {
        return error_text(code, message);
    }
    if lang() == Lang::En && !message.trim().is_empty() {
        return message.to_owned();
    }
    let t = t();
    match error {
        "too_large" => t.err_too_large_here.to_owned(),
        "over_quota" => t.err_over_quota.to_owned(),
        "unsupported_type" => t.err_unsupported_type.to_owned(),
        "bad_image" => t.err_bad_image.to_owned(),
        _ if status == 0 => t.err_unreachable.to_owned(),
        _ => fill(t.err_status, &[("status", &status.to_string())]),
    }
}

/// The shared crate's rules for names, passwords and messages, in Chinese, by their English
/// words (the client checks the same rules as the server, with the words the shared crate
/// gives; a test checks that every rule it can break is here).
const RULES_ZH: &[(&str, &str)] = &[
    (
        "Username must be at least 3 characters.",
        "用户名至少需要 3 个字符。",
    ),
    (
        "Username must be at most 32 characters.",
        "用户名最多 32 个字符。",
    ),
    (
        "Username may only use letters, digits, '_', '.' and '-'.",
        "用户名只能使用字母、数字、“_”、“.”和“-”。",
    ),
    (
        "Username must start with a letter or digit.",
        "用户名必须以字母或数字开头。",
    ),
    (
        "Password must be at least 8 characters.",
        "密码至少需要 8 个字符。",
    ),
    (
        "Password must be at most 128 characters.",
        "密码最多 128 个字符。",
    ),
    ("Room name must not be empty.", "房间名称不能为空。"),
    (
        "Room name must be at most 64 characters.",
        "房间名称最多 64 个字符。",
    ),
    (
        "Room name may not contain control or text-direction characters.",
        "房间名称不能包含控制字符或文字方向字符。",
    ),
    ("Display name must not be empty.", "显示名称不能为空。"),
    (
        "Display name must be at most 64 characters.",
        "显示名称最多 64 个字符。",
    ),
    (
        "Display name may not contain control or text-direction characters.",
        "显示名称不能包含控制字符或文字方向字符。",
    ),
    ("Message must not be empty.", "消息不能为空。"),
    (
        "Message is longer than 4000 characters.",
        "消息超过 4000 个字符。",
    ),
];

/// A rule of the shared crate broken by some input (a [`shared::ValueError`]), in the page's
/// language.
pub fn rule_text(err: &shared::ValueError) -> String {
    let en = err.to_string();
    if lang() == Lang::Zh
        && let Some((_, zh)) = RULES_ZH.iter().find(|(e, _)| *e == en)
    {
        return (*zh).to_owned();
    }
    en
}

/// The `localStorage` key of the person's own choice of language.
pub const STORAGE_KEY: &str = "chat.lang";

/// Picks the page's language (see the module docs) and marks it on `<html lang>`.
pub fn init() {
    let window = web_sys::window();
    let stored = window
        .as_ref()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten());
    let browser: Vec<String> = window
        .as_ref()
        .map(|w| {
            w.navigator()
                .languages()
                .iter()
                .filter_map(|v| v.as_string())
                .collect()
        })
        .unwrap_or_default();
    let chosen = Lang::choose(stored.as_deref(), browser.iter().map(String::as_str));
    set_lang(chosen);
    if let Some(root) = window
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("lang", chosen.tag());
    }
}

/// Keeps the person's choice and reloads the page in that language.
pub fn switch(lang: Lang) {
    let Some(window) = web_sys::window() else {
        return;
    };
    if let Some(storage) = window.local_storage().ok().flatten() {
        let _ = storage.set_item(STORAGE_KEY, lang.tag());
    }
    let _ = window.location().reload();
}

/// Writes the [`Text`] struct, one `&'static str` per line of the catalogue, and the two
/// catalogues [`EN`] and [`ZH`]. Each line is `name: "English", "中文";`.
macro_rules! catalogue {
    ($($(#[$doc:meta])* $name:ident: $en:literal, $zh:literal;)*) => {
        /// The strings of one language: see [`catalogue!`].
        #[derive(Debug)]
        pub struct Text {
            $($(#[$doc])* pub $name: &'static str,)*
        }

        /// English.
        pub static EN: Text = Text { $($name: $en,)* };

        /// Simplified Chinese.
        pub static ZH: Text = Text { $($name: $zh,)* };

        /// Every line of the catalogue, `(name, English, Chinese)`, for the tests.
        #[cfg(test)]
        pub const LINES: &[(&str, &str, &str)] = &[$((stringify!($name), $en, $zh),)*];
    };
}

catalogue! {
    // The app and the login page.
    app_name: "Chat", "聊天";
    loading: "Loading…", "正在加载…";
    username: "Username", "用户名";
    username_hint: "3 to 32 letters, digits, '_', '.' or '-'.", "3 到 32 个字母、数字、“_”、“.”或“-”。";
    password: "Password", "密码";
    display_name: "Display name", "显示名称";
    display_name_placeholder: "Display name (optional)", "显示名称（可选）";
    display_name_hint: "For a new account: the name others see (your username if left empty).", "用于新账号：其他人看到的名字（留空则用用户名）。";
    log_in: "Log in", "登录";
    register: "Register", "注册";
    log_out: "Log out", "退出登录";
    signed_in_as: "Signed in as ", "当前用户：";

    // The sidebar.
    rooms: "Rooms", "房间";
    direct: "Direct messages", "私信";
    new_dm: "New message", "新私信";
    close: "Close", "关闭";
    message: "Message", "发消息";
    invites: "Invites", "邀请";
    join: "Join", "加入";
    decline: "Decline", "拒绝";
    no_direct: "No conversations yet.", "还没有对话。";
    public: "Public", "公开";
    private: "Private", "私密";
    create: "Create", "创建";
    private_mark: "private", "私密";
    new_room_name: "New room name", "新房间名称";
    new_room_placeholder: "new-room", "新房间";
    who_may_join: "Who may join", "谁可以加入";
    invited_by: "invited by {name}", "由 {name} 邀请";
    online_in: "Online in {room}", "{room} 在线";
    mark_all_read: "Mark all as read", "全部标为已读";
    mark_read: "Mark as read", "标为已读";

    // The message list and the composer.
    message_box: "Message", "消息";
    send: "Send", "发送";
    message_room: "Message #{room}", "发消息到 #{room}";
    replying_deleted: "Replying to a deleted message", "回复一条已删除的消息";
    replying_to: "Replying to {name}: {text}", "回复 {name}：{text}";
    too_long_chars: "Message is longer than {n} characters.", "消息超过 {n} 个字符。";
    ask_delete_message: "Delete this message?", "删除这条消息？";
    load_older: "Load older messages", "加载更早的消息";
    loading_messages: "Loading messages…", "正在加载消息…";
    beginning_of: "This is the beginning of #{room}.", "这是 #{room} 的开始。";
    jump_unread: "Jump to first unread", "跳到第一条未读";
    new_below: "New messages below", "下方有新消息";
    jump_latest: "Jump to latest", "跳到最新";
    viewing_older: "You are viewing older messages.", "你正在查看较早的消息。";
    loading_missing: "Loading missing messages…", "正在加载缺失的消息…";
    some_not_loaded: "Some messages could not be loaded ", "部分消息无法加载 ";
    try_again: "Try again", "重试";
    joined_room: "{name} joined the room", "{name} 加入了房间";
    left_the_room: "{name} left the room", "{name} 离开了房间";
    new_messages: "New messages", "新消息";
    quote_deleted: "{name}: message deleted", "{name}：消息已删除";
    sending: "sending…", "发送中…";
    not_sent: "Not sent: {reason}", "未发送：{reason}";
    retry: "Retry", "重试";
    message_deleted: "message deleted", "消息已删除";
    edited: " (edited)", "（已编辑）";
    reply: "Reply", "回复";
    react: "React", "回应";
    edit: "Edit", "编辑";
    edit_message: "Edit message", "编辑消息";
    edit_hint: "Enter to save, Escape to cancel", "Enter 保存，Esc 取消";
    today: "Today", "今天";
    yesterday: "Yesterday", "昨天";

    // The connection badge.
    state_connecting: "connecting", "连接中";
    state_reconnecting: "reconnecting", "重新连接中";
    state_stopped: "stopped", "已停止";
    in_secs: " in {n}s", "，{n} 秒后";

    // Errors: the login form's, then one per error code of the protocol (shown in Chinese in
    // place of the server's English words; in English the server's own, more precise, words).
    err_network: "Cannot reach the server. Check your connection.", "无法连接服务器，请检查网络。";
    err_unreachable: "Cannot reach the server.", "无法连接服务器。";
    err_wrong_password: "Wrong username or password.", "用户名或密码错误。";
    err_taken: "That username is already taken.", "该用户名已被占用。";
    err_too_many_attempts: "Too many attempts. Wait a moment and try again.", "尝试次数过多，请稍后再试。";
    err_invalid_login: "Invalid username or password.", "用户名或密码无效。";
    err_server_status: "The server failed ({status}). Try again.", "服务器出错（{status}），请重试。";
    err_status: "The server answered {status}.", "服务器返回了 {status}。";
    err_bad_frame: "The server could not read the request.", "服务器无法读取该请求。";
    err_invalid: "That is not valid.", "输入无效。";
    err_bad_rule: "The rule is not valid: {detail}", "规则无效：{detail}";
    err_too_long: "The message is too long.", "消息太长。";
    err_no_such_room: "No such room.", "没有这个房间。";
    err_no_such_message: "No such message.", "没有这条消息。";
    err_not_joined: "Join the room first.", "请先加入房间。";
    err_forbidden: "Not allowed here.", "此处不允许该操作。";
    err_conflict: "That name is taken.", "该名称已被占用。";
    err_banned: "You are banned from this room.", "你已被此房间封禁。";
    err_muted: "You are muted in this room.", "你在此房间被禁言。";
    err_slow_mode: "Slow mode: wait a moment before posting again.", "慢速模式：请稍候再发言。";
    err_filtered: "A rule of this room refused the message.", "此房间的规则拒绝了这条消息。";
    err_no_such_user: "No such user.", "没有这个用户。";
    err_no_such_file: "That file is gone, or was not uploaded here.", "该文件不存在，或不是上传到这里的。";
    err_rate_limited: "Too many requests. Wait a moment.", "请求太频繁，请稍候。";
    err_internal: "The server failed. Try again.", "服务器出错，请重试。";
    err_unknown: "The request failed.", "请求失败。";

    not_sent_banned: "You were banned from this room.", "你已被此房间封禁。";
    not_sent_removed: "You were removed from this room.", "你已被移出此房间。";
    not_sent_not_member: "You are no longer a member of this room.", "你已不是此房间的成员。";
    could_not_load_rooms: "Could not load the rooms: {error}", "无法加载房间：{error}";
    room_exists_hidden: "A room named #{name} exists but is not visible.", "名为 #{name} 的房间已存在，但你看不到它。";
    could_not_decline: "Could not decline: {error}", "无法拒绝：{error}";
    other_user_tab: "You logged in as another user in another tab. Log in again.", "你在另一个标签页以其他用户登录了，请重新登录。";
    session_ended: "Your session has ended. Log in again.", "你的会话已结束，请重新登录。";

    // The quick switcher (Ctrl+K) and the keyboard.
    rooms_and_people: "Rooms and people", "房间和用户";
    skip_to_messages: "Skip to messages", "跳到消息";
    messages_label: "Messages", "消息";
    switcher_title: "Go to a room", "转到房间";
    switcher_placeholder: "Room or person", "房间或用户";
    switcher_hint: "↑ ↓ to choose, Enter to open, Esc to close", "↑ ↓ 选择，Enter 打开，Esc 关闭";
    switcher_none: "No room matches.", "没有匹配的房间。";

    // Settings.
    settings: "Settings", "设置";
    language: "Language", "语言";
    theme: "Theme", "主题";
    theme_system: "As the system", "跟随系统";
    theme_light: "Light", "浅色";
    theme_dark: "Dark", "深色";

    // People and moderation.
    you: " (you)", "（你）";
    muted: "muted", "已禁言";
    online: "online", "在线";
    offline: "offline", "离线";
    away: "away", "离开";
    kick: "Kick", "移出";
    ban: "Ban", "封禁";
    mute: "Mute", "禁言";
    unmute: "Unmute", "解除禁言";
    promote: "Make moderator", "设为管理员";
    demote: "Remove moderator", "取消管理员";
    confirm: "Confirm", "确认";
    cancel: "Cancel", "取消";
    reason: "Reason (optional)", "原因（可选）";
    duration: "For how long", "时长";
    one_minute: "1 minute", "1 分钟";
    ten_minutes: "10 minutes", "10 分钟";
    one_hour: "1 hour", "1 小时";
    one_day: "1 day", "1 天";
    invite_people: "Invite people", "邀请成员";
    invite: "Invite", "邀请";
    room_settings: "Room settings", "房间设置";
    topic: "Topic", "主题";
    slow_mode_label: "Slow mode (seconds between posts, 0 = off)", "慢速模式（两次发言间隔秒数，0 为关闭）";
    save: "Save", "保存";
    saved: "Saved.", "已保存。";
    filters: "Filter rules", "过滤规则";
    no_filters: "No rules.", "没有规则。";
    keyword: "Keyword", "关键词";
    regex: "Regular expression", "正则表达式";
    refuse: "Refuse the message", "拒绝该消息";
    mask: "Mask the match", "遮盖匹配内容";
    pattern: "Word or pattern", "词语或模式";
    add_rule: "Add rule", "添加规则";
    delete: "Delete", "删除";
    audit: "Audit log", "审计日志";
    nothing_yet: "Nothing yet.", "暂无记录。";
    refresh: "Refresh", "刷新";
    slow_mode_number: "Slow mode must be a whole number of seconds.", "慢速模式必须是整数秒。";
    role_member: "member", "成员";
    role_moderator: "moderator", "管理员";
    role_owner: "owner", "所有者";
    people_in: "People in {room}", "{room} 的成员";
    invited: "Invited {names}.", "已邀请 {names}。";
    ask_kick: "Remove {name} from {room}? They may come back.", "将 {name} 移出 {room}？对方可以再次加入。";
    ask_ban: "Ban {name} from {room}? They cannot come back.", "在 {room} 封禁 {name}？对方将无法再加入。";
    ask_unban: "Lift the ban of {name} in {room}?", "解除 {name} 在 {room} 的封禁？";
    ask_mute: "Mute {name} in {room}?", "在 {room} 禁言 {name}？";
    ask_unmute: "Let {name} post in {room} again?", "允许 {name} 在 {room} 再次发言？";
    ask_role: "Change the role of {name} in {room}?", "更改 {name} 在 {room} 的角色？";
    ask_promote: "Make {name} a moderator?", "将 {name} 设为管理员？";
    ask_demote: "Make {name} an ordinary member again?", "将 {name} 改回普通成员？";
    muted_until: "muted until {time}", "禁言至 {time}";
    rule_keyword_refuse: "keyword, refuses", "关键词，拒绝";
    rule_keyword_mask: "keyword, masks", "关键词，遮盖";
    rule_regex_refuse: "regex, refuses", "正则，拒绝";
    rule_regex_mask: "regex, masks", "正则，遮盖";
    rule_unknown: "a newer kind of rule", "较新的规则类型";
    search_people: "Search people", "搜索用户";
    filter_action: "What the rule does", "规则的作用";
    audit_line: "{actor}: {action} {target}", "{actor}：{action} {target}";
    audit_kick: "removed", "移出了";
    audit_ban: "banned", "封禁了";
    audit_unban: "lifted the ban of", "解除了封禁：";
    audit_mute: "muted", "禁言了";
    audit_unmute: "let post again", "解除了禁言：";
    audit_role: "changed the role of", "更改了角色：";
    audit_slow_mode: "set slow mode", "设置了慢速模式";
    audit_topic: "changed the topic", "更改了主题";
    audit_filter_add: "added a filter rule", "添加了过滤规则";
    audit_filter_remove: "removed a filter rule", "删除了过滤规则";
    audit_invite: "invited", "邀请了";
    close_panel: "Close the panel", "关闭面板";
    unread_count: "{n} unread", "{n} 条未读";
    nobody_found: "Nobody found.", "没有找到用户。";
    at_most_people: "At most {n} people.", "最多 {n} 人。";

    // The room's header, banners and notices.
    people: "People", "成员";
    dismiss: "Dismiss", "关闭";
    reconnect_now: "Reconnect now", "立即重连";
    slow_mode: "Slow mode: one message per {secs} s", "慢速模式：每 {secs} 秒一条消息";
    slow_wait: "Slow mode: {secs} s before your next message is sent", "慢速模式：{secs} 秒后发送下一条消息";
    you_are_muted: "You are muted in {room} until {time}.", "你在 {room} 被禁言至 {time}。";
    you_are_offline: "You are offline.", "你已离线。";
    disconnected: "Disconnected from the server.", "与服务器的连接已断开。";
    trying_again_in: "Trying again in {secs} s.", "{secs} 秒后重试。";
    reconnecting: "Reconnecting…", "正在重新连接…";
    banned_from: "You were banned from {room}", "你已被 {room} 封禁";
    removed_from: "You were removed from {room}", "你已被移出 {room}";
    left_room: "You left {room}", "你已离开 {room}";
    no_longer_member: "You are no longer a member of {room}", "你已不是 {room} 的成员";
    by_whom: " by {name}", "（操作者：{name}）";
    muted_notice: "You are muted in {room} until {time}", "你在 {room} 被禁言至 {time}";
    unmuted: "You may post in {room} again.", "你可以在 {room} 再次发言了。";
    with_reason: "{line}: {reason}", "{line}：{reason}";
    full_stop: "{line}.", "{line}。";
    is_typing: "{name} is typing…", "{name} 正在输入…";
    two_typing: "{a} and {b} are typing…", "{a} 和 {b} 正在输入…";
    several_typing: "Several people are typing…", "多人正在输入…";
    unresolved_one: "{n} unsent message for {rooms}: that room was not found. Kept in this browser until it is.", "{n} 条发往 {rooms} 的消息未发送：找不到该房间。消息会保留在此浏览器中，直到找到为止。";
    unresolved_many: "{n} unsent messages for {rooms}: that room was not found. Kept in this browser until it is.", "{n} 条发往 {rooms} 的消息未发送：找不到该房间。消息会保留在此浏览器中，直到找到为止。";
    discard: "Discard", "丢弃";
    enable_notifications: "Enable notifications", "开启通知";
    announce_one: "{name}: {text}", "{name}：{text}";
    announce_many: "{n} new messages", "{n} 条新消息";

    // Files: the composer's uploads and the files in messages.
    attach_files: "Attach files", "添加文件";
    uploading: "Uploading {name}", "正在上传 {name}";
    cancel_upload: "Cancel the upload of {name}", "取消上传 {name}";
    remove_file: "Remove {name}", "移除 {name}";
    retry_upload: "Upload {name} again", "重新上传 {name}";
    upload_done: "{name} is ready to send", "{name} 已可发送";
    too_many_files: "At most {n} files per message.", "每条消息最多 {n} 个文件。";
    waiting_for_files: "Sending when the files are uploaded…", "文件上传完成后即发送…";
    files_failed: "Some files were not uploaded: retry or remove them first.", "部分文件未上传：请先重试或移除。";
    files_lost: "Not sent before the page was reloaded: {names}. Attach them again.", "页面重新加载前未发送：{names}。请重新添加。";
    err_file_too_large: "The file is too large (at most {max}).", "文件太大（最多 {max}）。";
    err_too_large_here: "The file is larger than this server takes.", "文件超过了服务器允许的大小。";
    err_over_quota: "This file would take you over your upload quota.", "此文件会超出你的上传配额。";
    err_unsupported_type: "The file's content is not the type its name says.", "文件内容与其名称所示的类型不符。";
    err_bad_image: "The image cannot be read, or is too large.", "无法读取该图片，或图片太大。";
    err_upload_failed: "The upload failed.", "上传失败。";
    size_bytes: "{n} bytes", "{n} 字节";
    download: "Download {name}", "下载 {name}";
    open_full_size: "{name} (opens full size)", "{name}（打开原图）";
    open_in_new_tab: "Open in a new tab", "在新标签页中打开";
    close_viewer: "Close the image", "关闭图片";
    files_label: "Files", "文件";

    // Search.
    search: "Search", "搜索";
    search_title: "Search messages", "搜索消息";
    search_words: "Words to find", "要查找的词";
    search_this_room: "Only in {room}", "仅在 {room}";
    search_has_file: "Only messages with files", "仅含文件的消息";
    search_author: "By (username)", "作者（用户名）";
    search_from: "From", "起始日期";
    search_until: "Until", "截止日期";
    search_hint: "Enter searches; Down goes to the results; Escape closes.", "按 Enter 搜索；按 ↓ 转到结果；Esc 关闭。";
    search_results: "Results", "搜索结果";
    searching: "Searching…", "正在搜索…";
    search_none: "No messages found.", "没有找到消息。";
    search_more: "More results", "更多结果";
    search_has_files: "{n} files", "{n} 个文件";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in braces in a template, sorted.
    fn placeholders(s: &str) -> Vec<&str> {
        let mut out: Vec<&str> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(name, _)| name))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn both_languages_fill_the_same_parts_of_every_string() {
        for (name, en, zh) in LINES {
            assert_eq!(placeholders(en), placeholders(zh), "{name}");
        }
    }

    #[test]
    fn no_string_is_empty_or_left_untranslated() {
        for (name, en, zh) in LINES {
            assert!(!en.trim().is_empty() && !zh.trim().is_empty(), "{name}");
            // A Chinese string that is the English one was forgotten, unless it has no words.
            if en.chars().any(|c| c.is_ascii_alphabetic()) {
                assert_ne!(en, zh, "{name} is not translated");
            }
        }
    }

    #[test]
    fn fill_replaces_named_parts_and_leaves_the_rest() {
        assert_eq!(
            fill("Ban {name} from {room}?", &[("room", "#a"), ("name", "bo")]),
            "Ban bo from #a?"
        );
        assert_eq!(fill("{x} and {y", &[("x", "1")]), "1 and {y");
        assert_eq!(fill("{unknown}", &[]), "{unknown}");
        assert_eq!(fill("{n}{n}", &[("n", "{n}")]), "{n}{n}");
    }

    #[test]
    fn the_language_follows_the_choice_then_the_browser_then_english() {
        assert_eq!(Lang::choose(None, ["zh-CN", "en"]), Lang::Zh);
        assert_eq!(Lang::choose(None, ["fr-FR", "zh"]), Lang::Zh);
        assert_eq!(Lang::choose(None, ["en-GB", "zh-CN"]), Lang::En);
        assert_eq!(Lang::choose(Some("en"), ["zh-CN"]), Lang::En);
        assert_eq!(Lang::choose(Some("zh-CN"), ["en-US"]), Lang::Zh);
        assert_eq!(Lang::choose(Some("klingon"), ["zh-Hans-CN"]), Lang::Zh);
        assert_eq!(Lang::choose(None, ["zh-TW", "fr"]), Lang::En);
        assert_eq!(Lang::choose(None, ["zh-Hant-HK", "zh_CN"]), Lang::Zh);
        assert_eq!(Lang::choose(None, []), Lang::En);
    }

    #[test]
    fn a_refusal_keeps_the_servers_english_words_and_has_its_own_chinese_ones() {
        set_lang(Lang::En);
        assert_eq!(
            error_text(ErrorCode::Filtered, "Refused by rule 3."),
            "Refused by rule 3."
        );
        assert_eq!(error_text(ErrorCode::Muted, " "), EN.err_muted);
        set_lang(Lang::Zh);
        assert_eq!(
            error_text(ErrorCode::Filtered, "Refused by rule 3."),
            ZH.err_filtered
        );
        assert_eq!(error_text(ErrorCode::Unknown, ""), ZH.err_unknown);
        set_lang(Lang::En);
    }

    #[test]
    fn every_rule_the_forms_check_has_its_chinese_words() {
        use shared::{DisplayName, MessageText, Password, RoomName, Username};
        let long = "x".repeat(200);
        let errors = [
            Username::parse("ab").err(),
            Username::parse(long.as_str()).err(),
            Username::parse("a b c").err(),
            Username::parse("_abc").err(),
            Password::parse("short").err(),
            Password::parse(long.as_str()).err(),
            RoomName::parse("").err(),
            RoomName::parse(long.as_str()).err(),
            RoomName::parse("a\u{202e}b").err(),
            DisplayName::parse("").err(),
            DisplayName::parse(long.as_str()).err(),
            DisplayName::parse("a\u{0007}b").err(),
            MessageText::parse(" ").err(),
            MessageText::parse("y".repeat(shared::MAX_MESSAGE_CHARS + 1)).err(),
        ];
        set_lang(Lang::Zh);
        for err in errors {
            let err = err.expect("each input breaks a rule");
            let zh = rule_text(&err);
            assert_ne!(zh, err.to_string(), "no Chinese for {err}");
        }
        set_lang(Lang::En);
    }

    #[test]
    fn every_language_names_itself_and_its_tag_round_trips() {
        for lang in Lang::ALL {
            assert_eq!(Lang::from_tag(lang.tag()), Some(lang));
            assert!(!lang.name().is_empty());
        }
    }
}
