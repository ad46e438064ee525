//! The outbox: unconfirmed messages kept in the browser's `localStorage`, so that a message
//! typed offline (or sent but not yet acknowledged) survives a reload and is resent, with the
//! same `client_id`, on the next connection. The server deduplicates by that id, so a resend
//! never posts twice.
//!
//! Storage is changed by adding and removing single entries (read, change, write) rather than by
//! writing this tab's whole list: two tabs of the same user then do not erase each other's
//! entries. The encoding is plain JSON; anything unreadable is skipped, never fatal.
//!
//! # Upgrades
//! The first release stored entries under [`legacy_storage_key`] with the room's *name*
//! (`{"room":"general",...}`); the second by room id (`{"room":1,...}`), messages only; the
//! third also edits, deletions and reactions (`kind`, `target`, `emoji`, `on`, and `reply_to`
//! for answers), both under [`previous_storage_keys`]. This release also keeps a message's files
//! (`attachments`, each as its upload answered, so that the pending row shows them and the
//! `send` carries their ids), under [`storage_key`]. Every shape decodes ([`OutboxRoom`]; an
//! entry without `kind` is a message, one without `attachments` has none). Only uploaded files
//! are ever in an entry: a message waits in the composer until its files are stored, and a file
//! still uploading when the page is reloaded is lost (the composer then says which ones to
//! attach again, see [`crate::uploads`]).
//! New entries go to [`storage_key`] only, so that a tab still running an earlier release
//! (which would read an edit as a new message, or drop entries it cannot read when it rewrites
//! its key) never touches them; entries are removed from every key once confirmed or
//! discarded. A legacy
//! entry stays stored, in its old shape, until it is confirmed: the chat model resolves its room
//! name to an id once the room list is known (see [`crate::chat::Chat::set_room_list`]), and one
//! whose room cannot be found is kept (and shown) rather than dropped.

use serde::{Deserialize, Serialize};
use shared::{
    Attachment, ClientId, Emoji, EventKind, MAX_ATTACHMENTS, MAX_MESSAGE_CHARS, MessageText,
    RoomId, Username,
};

/// The room an outbox entry goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum OutboxRoom {
    /// Its id (JSON number): what this release writes.
    Id(RoomId),
    /// Its name (JSON string), as the first release wrote it: to be resolved to an id by exact
    /// name once the room list is known. Kept as the raw string: it is only ever compared.
    Name(String),
}

/// Read by hand rather than by `#[serde(untagged)]`, whose buffering of the value costs the
/// bundle more than the two cases need: a JSON number is an id, a string a name.
impl<'de> Deserialize<'de> for OutboxRoom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Room;
        impl serde::de::Visitor<'_> for Room {
            type Value = OutboxRoom;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a room id or name")
            }
            fn visit_u64<E>(self, v: u64) -> Result<OutboxRoom, E> {
                Ok(OutboxRoom::Id(RoomId(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<OutboxRoom, E> {
                Ok(OutboxRoom::Name(v.to_owned()))
            }
        }
        d.deserialize_any(Room)
    }
}

/// One unconfirmed message or change as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The room it goes to.
    pub room: OutboxRoom,
    /// Its client id (the deduplication key on the server).
    pub client_id: ClientId,
    /// Its text (of a message or an edit).
    #[serde(default)]
    pub text: String,
    /// When the user sent it (ms since the Unix epoch).
    pub created_ms: i64,
    /// What it is: `message` (absent), `edit`, `delete`, `react` (`on` says add or take back).
    #[serde(default, skip_serializing_if = "EventKind::is_message")]
    pub kind: EventKind,
    /// The message a change applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<u64>,
    /// The message a new one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// A reaction's emoji.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// A reaction added (`true`) or taken back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<bool>,
    /// A message's files, uploaded before it was sent (a file still uploading is never here:
    /// the message waits for it in the composer, and a reload loses it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl OutboxEntry {
    /// A new message.
    pub fn message(room: OutboxRoom, client_id: ClientId, text: String, created_ms: i64) -> Self {
        Self {
            room,
            client_id,
            text,
            created_ms,
            kind: EventKind::Message,
            target: None,
            reply_to: None,
            emoji: None,
            on: None,
            attachments: Vec::new(),
        }
    }

    /// Whether the entry can be sent: its text follows the rules where it has one, a change
    /// names its target, a reaction is a valid emoji.
    fn is_valid(&self) -> bool {
        let text_ok = || MessageText::parse(self.text.as_str()).is_ok();
        match self.kind {
            // With files, the text may be empty.
            EventKind::Message if !self.attachments.is_empty() => {
                self.attachments.len() <= MAX_ATTACHMENTS
                    && self.text.chars().count() <= MAX_MESSAGE_CHARS
            }
            EventKind::Message => text_ok(),
            EventKind::Edit => self.target.is_some() && text_ok(),
            EventKind::Delete => self.target.is_some(),
            EventKind::React => {
                self.target.is_some()
                    && self
                        .emoji
                        .as_deref()
                        .is_some_and(|e| Emoji::parse(e).is_ok())
            }
            EventKind::Unreact | EventKind::Unknown => false,
        }
    }
}

/// The `localStorage` key of a user's outbox. Usernames are unique without regard to ASCII case,
/// so the key is lower-cased. (A new key, because a tab of the release before would send a
/// message with files as text only, or drop one without text when it rewrites its key.)
pub fn storage_key(user: &Username) -> String {
    format!("chat.outbox.v4.{}", user.as_str().to_ascii_lowercase())
}

/// The keys the second and third releases stored the outbox under (messages only, by room id;
/// then changes too). Read on load, pruned as their entries are confirmed, never added to.
pub fn previous_storage_keys(user: &Username) -> [String; 2] {
    let user = user.as_str().to_ascii_lowercase();
    [
        format!("chat.outbox.v3.{user}"),
        format!("chat.outbox.v2.{user}"),
    ]
}

/// The key the first release stored the outbox under (entries addressed by room name). Read on
/// load, pruned as its entries are confirmed, never added to.
pub fn legacy_storage_key(user: &Username) -> String {
    format!("chat.outbox.v1.{}", user.as_str().to_ascii_lowercase())
}

/// Reads a stored outbox, skipping entries that do not parse or whose text breaks the rules
/// (storage is user-writable, so it is input like any other).
pub fn decode(raw: &str) -> Vec<OutboxEntry> {
    // The array is checked whole, then each element is read from its own slice of the text: one
    // bad entry is skipped without a `serde_json::Value` tree (whose decoder and map cost the
    // bundle some 5 KB gzipped).
    if serde_json::from_str::<Vec<serde::de::IgnoredAny>>(raw).is_err() {
        return Vec::new();
    }
    elements(raw)
        .into_iter()
        .filter_map(|e| serde_json::from_str::<OutboxEntry>(e).ok())
        .filter(OutboxEntry::is_valid)
        .collect()
}

/// The texts of the elements of a JSON array already known to be well formed.
fn elements(raw: &str) -> Vec<&str> {
    let inner = raw.trim();
    let inner = &inner[1..inner.len() - 1];
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut esc, mut start) = (0u32, false, false, 0);
    for (i, b) in inner.bytes().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        out.push(&inner[start..]);
    }
    out
}

/// Writes an outbox.
pub fn encode(entries: &[OutboxEntry]) -> String {
    // Serializing plain strings and numbers cannot fail.
    serde_json::to_string(entries).unwrap_or_else(|_| "[]".into())
}

/// Applies one tab's changes to what storage holds: removes `removed`, appends the `added` not
/// already there.
pub fn merge(
    mut stored: Vec<OutboxEntry>,
    added: &[OutboxEntry],
    removed: &[ClientId],
) -> Vec<OutboxEntry> {
    stored.retain(|e| !removed.contains(&e.client_id));
    for a in added {
        if !stored.iter().any(|e| e.client_id == a.client_id) {
            stored.push(a.clone());
        }
    }
    stored
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Loads a user's outbox (empty when storage is unavailable, for example in a private window
/// that forbids it): this release's entries, then those the earlier releases left (an entry in
/// several is taken once).
pub fn load(user: &Username) -> Vec<OutboxEntry> {
    let Some(storage) = local_storage() else {
        return Vec::new();
    };
    let read = |key: String| {
        storage
            .get_item(&key)
            .ok()
            .flatten()
            .map(|raw| decode(&raw))
            .unwrap_or_default()
    };
    let mut all = read(storage_key(user));
    for key in previous_storage_keys(user) {
        all = merge(all, &read(key), &[]);
    }
    merge(all, &read(legacy_storage_key(user)), &[])
}

/// Records added and removed entries of a user's outbox: added ones under [`storage_key`],
/// removed ones from every key. Failing to write (quota, no storage) only loses the
/// reload-survival of those messages, so it is not reported further.
pub fn update(user: &Username, added: &[OutboxEntry], removed: &[ClientId]) {
    if added.is_empty() && removed.is_empty() {
        return;
    }
    let Some(storage) = local_storage() else {
        return;
    };
    write(&storage, &storage_key(user), added, removed);
    if !removed.is_empty() {
        for key in previous_storage_keys(user) {
            write(&storage, &key, &[], removed);
        }
        write(&storage, &legacy_storage_key(user), &[], removed);
    }
}

/// Read, change, write one key (removed when it ends up empty).
fn write(storage: &web_sys::Storage, key: &str, added: &[OutboxEntry], removed: &[ClientId]) {
    let Ok(raw) = storage.get_item(key) else {
        return;
    };
    if raw.is_none() && added.is_empty() {
        return;
    }
    let stored = raw.map(|raw| decode(&raw)).unwrap_or_default();
    let next = merge(stored, added, removed);
    let result = if next.is_empty() {
        storage.remove_item(key)
    } else {
        storage.set_item(key, &encode(&next))
    };
    if result.is_err() {
        leptos::logging::warn!("could not write the outbox to localStorage");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> OutboxEntry {
        OutboxEntry::message(
            OutboxRoom::Id(shared::DEFAULT_ROOM_ID),
            ClientId::parse(id).expect("valid"),
            format!("text {id}"),
            1,
        )
    }

    /// An outbox exactly as the second release wrote it (messages only, by room id).
    const SECOND_RELEASE: &str = r#"[{"room":1,"client_id":"c-old","text":"typed offline","created_ms":1700000000000},{"room":7,"client_id":"c-old2","text":"in rust","created_ms":1700000000001}]"#;

    #[test]
    fn the_second_releases_entries_decode_as_messages() {
        let got = decode(SECOND_RELEASE);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].room, OutboxRoom::Id(shared::DEFAULT_ROOM_ID));
        assert_eq!(got[0].kind, EventKind::Message);
        assert_eq!(got[0].text, "typed offline");
        assert_eq!(got[1].room, OutboxRoom::Id(RoomId(7)));
        // Written back unchanged (a message has no `kind`).
        assert_eq!(encode(&got), SECOND_RELEASE);
    }

    #[test]
    fn changes_round_trip_and_invalid_ones_are_skipped() {
        let raw = r#"[
            {"room":1,"client_id":"e","text":"fixed","created_ms":1,"kind":"edit","target":4},
            {"room":1,"client_id":"d","created_ms":1,"kind":"delete","target":4},
            {"room":1,"client_id":"r","created_ms":1,"kind":"react","target":4,"emoji":"👍","on":false},
            {"room":1,"client_id":"m","text":"yes","created_ms":1,"reply_to":4},
            {"room":1,"client_id":"x1","created_ms":1,"kind":"delete"},
            {"room":1,"client_id":"x2","text":"  ","created_ms":1,"kind":"edit","target":4},
            {"room":1,"client_id":"x3","created_ms":1,"kind":"react","target":4,"emoji":"a b"},
            {"room":1,"client_id":"x4","created_ms":1,"kind":"pin","target":4}
        ]"#;
        let got = decode(raw);
        let ids: Vec<_> = got.iter().map(|e| e.client_id.as_str()).collect();
        assert_eq!(ids, vec!["e", "d", "r", "m"]);
        assert_eq!(got[2].on, Some(false));
        assert_eq!(got[3].reply_to, Some(4));
        assert_eq!(decode(&encode(&got)), got);
    }

    /// An outbox exactly as the previous release wrote it (`serde_json` of its `OutboxEntry`,
    /// whose room was a `RoomName`).
    const PREVIOUS_RELEASE: &str = r#"[{"room":"general","client_id":"0b9f2c1e-6a54-4c55-9d7e-2f1d3c4b5a69","text":"hello from before","created_ms":1700000000000},{"room":"rust-2024","client_id":"a1","text":"in rust","created_ms":1700000000001},{"room":"gone","client_id":"a2","text":"nowhere","created_ms":1700000000002}]"#;

    #[test]
    fn a_room_is_a_whole_number_or_a_string() {
        for room in ["-1", "1.5", "true", "null", "[]", "{}"] {
            let raw = format!(r#"[{{"room":{room},"client_id":"a","text":"t","created_ms":1}}]"#);
            assert!(decode(&raw).is_empty(), "{room}");
        }
        let raw = r#"[{"room":7,"client_id":"a","text":"t","created_ms":1},{"room":"r","client_id":"b","text":"t","created_ms":1}]"#;
        let got = decode(raw);
        assert_eq!(got[0].room, OutboxRoom::Id(RoomId(7)));
        assert_eq!(got[1].room, OutboxRoom::Name("r".into()));
    }

    #[test]
    fn elements_split_at_top_level_commas_only() {
        let raw = r#" [ {"a":"x,]\"}"} , [1,{"b":2}] ,"s\\",3 ] "#;
        assert_eq!(
            elements(raw),
            [r#" {"a":"x,]\"}"} "#, r#" [1,{"b":2}] "#, r#""s\\""#, "3 "]
        );
        assert!(elements("[]").is_empty());
        assert!(elements(" [ ] ").is_empty());
        let tricky = r#"[{"room":1,"client_id":"a","text":"a, \"b\" } ]","created_ms":1},{"room":1,"client_id":"b","text":"ok","created_ms":2}]"#;
        let got = decode(tricky);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].text, r#"a, "b" } ]"#);
    }

    #[test]
    fn entries_round_trip() {
        let entries = vec![entry("a"), entry("b")];
        assert_eq!(decode(&encode(&entries)), entries);
        assert_eq!(
            encode(&[entry("a")]),
            r#"[{"room":1,"client_id":"a","text":"text a","created_ms":1}]"#
        );
    }

    #[test]
    fn the_previous_releases_entries_decode_with_their_room_names() {
        let got = decode(PREVIOUS_RELEASE);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].room, OutboxRoom::Name("general".into()));
        assert_eq!(
            got[0].client_id.as_str(),
            "0b9f2c1e-6a54-4c55-9d7e-2f1d3c4b5a69"
        );
        assert_eq!(got[0].text, "hello from before");
        assert_eq!(got[0].created_ms, 1_700_000_000_000);
        assert_eq!(got[1].room, OutboxRoom::Name("rust-2024".into()));
        // Rewritten (another entry removed), a legacy entry keeps its shape.
        let kept = merge(
            got,
            &[entry("new")],
            &[ClientId::parse("a1").expect("valid")],
        );
        let raw = encode(&kept);
        assert!(raw.contains(r#""room":"general""#), "{raw}");
        assert!(raw.contains(r#""room":"gone""#), "{raw}");
        assert!(raw.contains(r#""room":1,"client_id":"new""#), "{raw}");
        assert_eq!(decode(&raw), kept);
    }

    #[test]
    fn garbage_and_invalid_entries_are_skipped() {
        assert!(decode("not json").is_empty());
        assert!(decode("{}").is_empty());
        let raw = r#"[
            {"room":1,"client_id":"ok","text":"hi","created_ms":1},
            {"room":"general","client_id":"legacy","text":"hi","created_ms":1},
            {"room":-1,"client_id":"x","text":"hi","created_ms":1},
            {"room":null,"client_id":"x","text":"hi","created_ms":1},
            {"room":1,"client_id":"bad id","text":"hi","created_ms":1},
            {"room":1,"client_id":"y","text":"   ","created_ms":1},
            42
        ]"#;
        let got = decode(raw);
        let ids: Vec<_> = got.iter().map(|e| e.client_id.as_str()).collect();
        assert_eq!(ids, vec!["ok", "legacy"]);
    }

    /// An outbox exactly as the third release wrote it (messages and changes, no files).
    const THIRD_RELEASE: &str = r#"[{"room":1,"client_id":"m3","text":"hi","created_ms":1,"reply_to":4},{"room":1,"client_id":"e3","text":"fixed","created_ms":2,"kind":"edit","target":4}]"#;

    #[test]
    fn the_third_releases_entries_decode_without_files_and_write_back_unchanged() {
        let got = decode(THIRD_RELEASE);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|e| e.attachments.is_empty()));
        assert_eq!(got[1].kind, EventKind::Edit);
        assert_eq!(encode(&got), THIRD_RELEASE);
    }

    #[test]
    fn a_message_with_files_round_trips_and_may_have_no_text() {
        let raw = r#"[
            {"room":1,"client_id":"f1","text":"","created_ms":1,"attachments":[{"id":5,"name":"猫.png","size":48213,"mime":"image/png","width":640,"height":480,"thumbnail":true}]},
            {"room":1,"client_id":"f2","text":"see","created_ms":1,"attachments":[{"id":6,"name":"a.pdf","size":9,"mime":"application/pdf"}]},
            {"room":1,"client_id":"x1","text":"","created_ms":1,"attachments":[]},
            {"room":1,"client_id":"x2","text":"","created_ms":1,"attachments":[{"id":1}]}
        ]"#;
        let got = decode(raw);
        let ids: Vec<_> = got.iter().map(|e| e.client_id.as_str()).collect();
        assert_eq!(ids, vec!["f1", "f2"]);
        assert_eq!(got[0].attachments[0].width, Some(640));
        assert_eq!(got[1].attachments[0].name, "a.pdf");
        assert_eq!(decode(&encode(&got)), got);
        // Too many files is not a message the server would take.
        let mut many = got[0].clone();
        many.attachments = vec![many.attachments[0].clone(); MAX_ATTACHMENTS + 1];
        assert!(decode(&encode(&[many])).is_empty());
    }

    #[test]
    fn merging_keeps_other_tabs_entries() {
        let stored = vec![entry("other-tab"), entry("mine")];
        let merged = merge(
            stored,
            &[entry("new"), entry("other-tab")],
            &[ClientId::parse("mine").expect("valid")],
        );
        let ids: Vec<_> = merged.iter().map(|e| e.client_id.as_str()).collect();
        assert_eq!(ids, vec!["other-tab", "new"]);
    }

    #[test]
    fn keys_ignore_username_case_and_the_new_key_is_not_the_old_one() {
        let a = Username::parse("Alice").expect("valid");
        let b = Username::parse("alice").expect("valid");
        assert_eq!(storage_key(&a), storage_key(&b));
        assert_eq!(legacy_storage_key(&a), "chat.outbox.v1.alice");
        assert_eq!(
            previous_storage_keys(&a),
            ["chat.outbox.v3.alice", "chat.outbox.v2.alice"]
        );
        assert_eq!(storage_key(&a), "chat.outbox.v4.alice");
    }
}
