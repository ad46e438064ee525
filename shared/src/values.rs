//! Validated values: each newtype can only be built by parsing, so holding one is proof that the
//! input met the rules. Deserializing one runs the same parse, so a frame carrying an invalid
//! value is rejected at the edge rather than deep inside a handler.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::MAX_MESSAGE_CHARS;

/// Why an input was refused. The `Display` text is written for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// A username that breaks the rules in [`Username::parse`].
    Username(&'static str),
    /// A password that breaks the rules in [`Password::parse`].
    Password(&'static str),
    /// A room name that breaks the rules in [`RoomName::parse`].
    RoomName(&'static str),
    /// A display name that breaks the rules in [`DisplayName::parse`].
    DisplayName(&'static str),
    /// A message that is empty or only whitespace.
    MessageText(&'static str),
    /// A message longer than [`MAX_MESSAGE_CHARS`] (kept apart: the server answers it with its
    /// own error code, `too_long`).
    MessageTooLong(&'static str),
    /// A client id that is empty, too long, or has characters outside `[A-Za-z0-9_-]`.
    ClientId(&'static str),
    /// A reaction that breaks the rules in [`Emoji::parse`].
    Emoji(&'static str),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Username(why)
            | ValueError::Password(why)
            | ValueError::RoomName(why)
            | ValueError::DisplayName(why)
            | ValueError::MessageText(why)
            | ValueError::MessageTooLong(why)
            | ValueError::ClientId(why)
            | ValueError::Emoji(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ValueError {}

/// Implements `Deserialize` through `parse`, `Serialize` as the inner string, `Display`,
/// `AsRef<str>` and `as_str` for a string newtype.
macro_rules! string_newtype {
    ($ty:ident) => {
        string_newtype!($ty, via parse);
    };
    ($ty:ident, via $de:ident) => {
        impl $ty {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Gives back the validated text.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $ty::$de(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A username: 3 to 32 characters from `A-Z a-z 0-9 _ . -`, starting with a letter or digit.
///
/// Usernames are unique without regard to ASCII case (the store enforces it), so `Alice` and
/// `alice` cannot both exist; the spelling chosen at registration is the one shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Fewest characters in a username.
    pub const MIN: usize = 3;
    /// Most characters in a username.
    pub const MAX: usize = 32;

    /// Checks the rules and wraps the name. Surrounding whitespace is an error, not trimmed, so
    /// that what is stored is exactly what was typed.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValueError> {
        let raw = raw.into();
        let len = raw.chars().count();
        if len < Self::MIN {
            return Err(ValueError::Username(
                "Username must be at least 3 characters.",
            ));
        }
        if len > Self::MAX {
            return Err(ValueError::Username(
                "Username must be at most 32 characters.",
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(ValueError::Username(
                "Username may only use letters, digits, '_', '.' and '-'.",
            ));
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(ValueError::Username(
                "Username must start with a letter or digit.",
            ));
        }
        Ok(Self(raw))
    }
}
string_newtype!(Username);

impl std::str::FromStr for Username {
    type Err = ValueError;

    /// The same as [`Username::parse`] (for command-line options).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A password: 8 to 128 characters. Anything else is up to the user.
///
/// Its `Debug` output is redacted so that it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Fewest characters in a password.
    pub const MIN: usize = 8;
    /// Most characters in a password (argon2 would take more; this bounds the work per request).
    pub const MAX: usize = 128;

    /// Checks the length and wraps the password.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValueError> {
        let raw = raw.into();
        let len = raw.chars().count();
        if len < Self::MIN {
            return Err(ValueError::Password(
                "Password must be at least 8 characters.",
            ));
        }
        if len > Self::MAX {
            return Err(ValueError::Password(
                "Password must be at most 128 characters.",
            ));
        }
        Ok(Self(raw))
    }
}
string_newtype!(Password);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Checks a name people read (a room name, a display name) and gives back its stored form:
/// trimmed, NFC-normalised (with the `nfc` feature, as on the server), 1 to `max` characters as a
/// person counts them (grapheme clusters: `👨‍👩‍👧` is one, `é` is one however it is encoded).
/// Control characters, line and paragraph separators, and the bidi embeddings, overrides and
/// isolates that can make a name display as something else are refused, as is a name that shows
/// nothing.
fn parse_name(
    raw: String,
    max: usize,
    wrap: fn(&'static str) -> ValueError,
    messages: &NameMessages,
) -> Result<String, ValueError> {
    let trimmed = raw.trim();
    if trimmed.chars().any(is_forbidden_in_name) {
        return Err(wrap(messages.characters));
    }
    if trimmed.chars().all(is_invisible) {
        return Err(wrap(messages.empty));
    }
    #[cfg(feature = "nfc")]
    let name: String = {
        use unicode_normalization::UnicodeNormalization;
        trimmed.nfc().collect()
    };
    #[cfg(not(feature = "nfc"))]
    let name: String = trimmed.to_owned();
    if longer_than(&name, max) {
        return Err(wrap(messages.too_long));
    }
    Ok(name)
}

/// Whether `name` has more than `max` characters as a person counts them. Counting stops early,
/// so a hostile long string costs no more than the limit.
#[cfg(feature = "graphemes")]
fn longer_than(name: &str, max: usize) -> bool {
    use unicode_segmentation::UnicodeSegmentation;
    name.graphemes(true).nth(max).is_some()
}

/// Without the grapheme tables: characters other than combining and joining marks, which never
/// counts fewer than the grapheme clusters.
#[cfg(not(feature = "graphemes"))]
fn longer_than(name: &str, max: usize) -> bool {
    name.chars().filter(|&c| !is_mark(c)).nth(max).is_some()
}

/// Combining marks of the common blocks, joiners, variation selectors, emoji modifiers and tags:
/// characters that extend the one before them.
#[cfg(not(feature = "graphemes"))]
fn is_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{0483}'..='\u{0489}'
            | '\u{0591}'..='\u{05BD}'
            | '\u{0610}'..='\u{061A}'
            | '\u{064B}'..='\u{065F}'
            | '\u{0900}'..='\u{0903}'
            | '\u{093A}'..='\u{094F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{200C}' | '\u{200D}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{3099}' | '\u{309A}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FE20}'..='\u{FE2F}'
            | '\u{1F3FB}'..='\u{1F3FF}'
            | '\u{E0020}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// A name as the server sent it. With the `graphemes` feature (the server), the full rules;
/// without it (the browser client), only what can be checked without the grapheme tables, so
/// that a name the server accepted is never refused: not blank, no forbidden characters.
fn received_name(raw: String, wrap: fn(&'static str) -> ValueError) -> Result<String, ValueError> {
    if cfg!(feature = "graphemes") {
        return Ok(raw);
    }
    if raw.chars().all(is_invisible) || raw.chars().any(is_forbidden_in_name) {
        return Err(wrap("A name from the server breaks the rules."));
    }
    Ok(raw)
}

/// The messages [`parse_name`] answers with, per kind of name.
struct NameMessages {
    empty: &'static str,
    too_long: &'static str,
    characters: &'static str,
}

/// Characters a name may not hold (see [`parse_name`]).
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'                 // Arabic letter mark
            | '\u{200E}' | '\u{200F}'  // LRM, RLM
            | '\u{2028}' | '\u{2029}'  // line and paragraph separators
            | '\u{202A}'..='\u{202E}'  // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}'  // bidi isolates
        )
}

/// A room's name, as people read it: 1 to 64 characters in any script (`技术讨论`, `rust-2024`,
/// `Café ☕`). See [`parse_name`] for the rules. Rooms are addressed by their [`RoomId`]; public
/// room names are unique without regard to case (the store enforces it with [`RoomName::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

impl RoomName {
    /// Most characters (grapheme clusters) in a room name.
    pub const MAX: usize = 64;

    /// Checks the rules and gives back the name in its stored form.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValueError> {
        parse_name(
            raw.into(),
            Self::MAX,
            ValueError::RoomName,
            &NameMessages {
                empty: "Room name must not be empty.",
                too_long: "Room name must be at most 64 characters.",
                characters: "Room name may not contain control or text-direction characters.",
            },
        )
        .map(Self)
    }

    /// The form in which two names that differ only in case are equal (Unicode lower case).
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}
string_newtype!(RoomName, via received);

impl RoomName {
    /// Deserializing: the full rules where the grapheme tables are compiled in, else only the
    /// checks that cannot refuse a name the server accepted (see the `graphemes` feature).
    fn received(raw: String) -> Result<Self, ValueError> {
        if cfg!(feature = "graphemes") {
            return Self::parse(raw);
        }
        received_name(raw, ValueError::RoomName).map(Self)
    }
}

/// The name a person is shown by, beside their login handle ([`Username`]): 1 to 64 characters in
/// any script (`张三丰`, `Zoë`), with the rules of [`parse_name`]. Not unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DisplayName(String);

impl DisplayName {
    /// Most characters (grapheme clusters) in a display name.
    pub const MAX: usize = 64;

    /// Checks the rules and gives back the name in its stored form.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValueError> {
        parse_name(
            raw.into(),
            Self::MAX,
            ValueError::DisplayName,
            &NameMessages {
                empty: "Display name must not be empty.",
                too_long: "Display name must be at most 64 characters.",
                characters: "Display name may not contain control or text-direction characters.",
            },
        )
        .map(Self)
    }
}
string_newtype!(DisplayName, via received);

impl DisplayName {
    /// Deserializing: as for [`RoomName`].
    fn received(raw: String) -> Result<Self, ValueError> {
        if cfg!(feature = "graphemes") {
            return Self::parse(raw);
        }
        received_name(raw, ValueError::DisplayName).map(Self)
    }
}

impl From<&Username> for DisplayName {
    /// A handle is always a valid display name: the default for accounts that chose none.
    fn from(user: &Username) -> Self {
        Self(user.as_str().to_owned())
    }
}

/// A room's stable id. Every frame and endpoint addresses a room by it; its name may change and
/// may be in any script. On the wire it is a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomId(pub u64);

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The text of a message: not blank, at most [`MAX_MESSAGE_CHARS`] characters. It is stored and
/// delivered exactly as sent (no trimming), and clients render it as text, never as HTML.
///
/// Blank means made only of characters that show nothing: whitespace, control characters
/// (NUL included), and the invisible ones that a text field does not reveal (zero-width spaces
/// and joiners, the byte-order mark, word joiners, bidi marks, the Braille blank U+2800, Hangul
/// fillers and the like; see [`is_invisible`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    /// Checks the length and wraps the text.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValueError> {
        let raw = raw.into();
        if raw.chars().all(is_invisible) {
            return Err(ValueError::MessageText("Message must not be empty."));
        }
        // Counting stops early, so a hostile multi-megabyte string costs no more than the limit.
        if raw.chars().nth(MAX_MESSAGE_CHARS).is_some() {
            return Err(ValueError::MessageTooLong(
                "Message is longer than 4000 characters.",
            ));
        }
        Ok(Self(raw))
    }
}
string_newtype!(MessageText);

/// Whether a character shows nothing on its own: whitespace, controls, and the format and
/// filler characters that render as blank.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'                      // soft hyphen
            | '\u{034F}'                    // combining grapheme joiner
            | '\u{061C}'                    // Arabic letter mark
            | '\u{115F}' | '\u{1160}'       // Hangul choseong/jungseong fillers
            | '\u{17B4}' | '\u{17B5}'       // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}'       // Mongolian variation selectors, vowel separator
            | '\u{200B}'..='\u{200F}'       // zero-width space, joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}'       // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}'       // word joiner, invisible operators, bidi isolates
            | '\u{2800}'                    // Braille pattern blank
            | '\u{3164}'                    // Hangul filler
            | '\u{FE00}'..='\u{FE0F}'       // variation selectors
            | '\u{FEFF}'                    // byte-order mark
            | '\u{FFA0}'                    // halfwidth Hangul filler
            | '\u{FFF9}'..='\u{FFFB}'       // interlinear annotation
            | '\u{1D173}'..='\u{1D17A}'     // musical formatting
            | '\u{E0000}'..='\u{E007F}'     // tags
        )
}

/// A client-generated message id (a UUID in the browser client). The server keeps
/// (author, `client_id`) unique, so a resend of the same id is recognised, not stored twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Most characters in a client id.
    pub const MAX: usize = 64;

    /// Checks the rules and wraps the id.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValueError> {
        let raw = raw.into();
        if raw.is_empty() || raw.len() > Self::MAX {
            return Err(ValueError::ClientId(
                "client_id must be 1 to 64 characters.",
            ));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            return Err(ValueError::ClientId(
                "client_id may only use letters, digits, '_' and '-'.",
            ));
        }
        Ok(Self(raw))
    }
}
string_newtype!(ClientId);

/// A reaction: any emoji (or other short symbol) a person picked. The server does not keep a
/// list of emoji, which grows every year; it checks only that the reaction is short and shows
/// something: 1 to [`Emoji::MAX_BYTES`] bytes of UTF-8, with no whitespace or control
/// characters, and not only invisible ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Emoji(String);

impl Emoji {
    /// Most bytes in a reaction (a family emoji with skin tones takes about 35; flags 8).
    pub const MAX_BYTES: usize = 48;

    /// Checks the rules and wraps the reaction.
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValueError> {
        let raw = raw.into();
        if raw.is_empty() || raw.len() > Self::MAX_BYTES {
            return Err(ValueError::Emoji("A reaction must be 1 to 48 bytes."));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValueError::Emoji(
                "A reaction must not hold spaces or control characters.",
            ));
        }
        if raw.chars().all(is_invisible) {
            return Err(ValueError::Emoji("A reaction must show something."));
        }
        Ok(Self(raw))
    }
}
string_newtype!(Emoji);

/// The most mentions one message records.
pub const MAX_MENTIONS: usize = 20;

/// The handles a text mentions: `@handle` at the start or after a character that cannot be part
/// of an address (so `mail@example.org` mentions nobody, while `你好@bob` mentions bob), outside backtick code spans
/// and fenced code blocks. A trailing `.` or `-` ends the sentence, not the handle. Each handle
/// once, in order of first mention, at most [`MAX_MENTIONS`].
pub fn mentioned_handles(text: &str) -> Vec<Username> {
    let mut found: Vec<Username> = Vec::new();
    let mut in_code = false;
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            in_code = !in_code;
            // A fence (```) toggles once, not three times.
            while chars.peek().is_some_and(|&(_, n)| n == '`') {
                chars.next();
            }
            prev = Some(c);
            continue;
        }
        let starts = c == '@'
            && !in_code
            && !prev
                .is_some_and(|p| p.is_ascii_alphanumeric() || matches!(p, '_' | '.' | '-' | '@'));
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[i + 1..];
        let len = rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-')))
            .unwrap_or(rest.len());
        let handle = rest[..len].trim_end_matches(['.', '-']);
        if let Ok(user) = Username::parse(handle)
            && !found
                .iter()
                .any(|f| f.as_str().eq_ignore_ascii_case(handle))
        {
            found.push(user);
            if found.len() == MAX_MENTIONS {
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_found_outside_code_and_addresses() {
        let names = |t: &str| -> Vec<String> {
            mentioned_handles(t)
                .into_iter()
                .map(|u| u.as_str().to_owned())
                .collect()
        };
        assert_eq!(names("@alice hi @bob."), ["alice", "bob"]);
        assert_eq!(names("(@carol) and @alice, @ALICE"), ["carol", "alice"]);
        assert_eq!(names("mail me: dave@example.org"), Vec::<String>::new());
        assert_eq!(names("`@eve` and ```\n@mallory\n``` but @trent"), ["trent"]);
        assert_eq!(names("你好@bob，@小明"), ["bob"]);
        assert_eq!(names("@@x @ab"), Vec::<String>::new());
        let many: String = (0..30).map(|i| format!("@user{i:02} ")).collect();
        assert_eq!(names(&many).len(), MAX_MENTIONS);
    }

    #[test]
    fn reactions_are_short_and_visible() {
        assert!(Emoji::parse("👍").is_ok());
        assert!(Emoji::parse("👨‍👩‍👧‍👦").is_ok());
        assert!(Emoji::parse("🇨🇳").is_ok());
        assert!(Emoji::parse("+1").is_ok());
        assert!(Emoji::parse("").is_err());
        assert!(Emoji::parse("a b").is_err());
        assert!(Emoji::parse("\u{200B}").is_err());
        assert!(Emoji::parse("x\n").is_err());
        assert!(Emoji::parse("😀".repeat(13)).is_err());
    }

    #[test]
    fn usernames_follow_the_rules() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("Bob_2.x-y").is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("a".repeat(33)).is_err());
        assert!(Username::parse("a".repeat(32)).is_ok());
        assert!(Username::parse("_alice").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("<script>").is_err());
        assert!(Username::parse("élodie").is_err());
    }

    #[test]
    fn passwords_are_between_8_and_128_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse("é".repeat(128)).is_ok());
        assert!(Password::parse("é".repeat(129)).is_err());
    }

    #[test]
    fn password_debug_output_is_redacted() {
        let p = Password::parse("hunter2hunter2").expect("valid");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn room_names_are_unicode_and_counted_as_people_see_them() {
        assert_eq!(
            RoomName::parse("  技术讨论 ").expect("valid").as_str(),
            "技术讨论"
        );
        assert!(RoomName::parse("General Chat ☕").is_ok());
        assert!(RoomName::parse("").is_err());
        assert!(RoomName::parse("   ").is_err());
        assert!(RoomName::parse("\u{200B}\u{2800}").is_err());
        assert!(RoomName::parse("x".repeat(64)).is_ok());
        assert!(RoomName::parse("x".repeat(65)).is_err());
        assert!(RoomName::parse("e\u{301}".repeat(64)).is_ok());
        // 64 family emoji of 5 scalar values each are 64 characters to a person: exactly so
        // with the grapheme tables; without them the count is stricter, but such a name sent
        // by the server is still accepted.
        let families = "👨\u{200D}👩\u{200D}👧".repeat(64);
        if cfg!(feature = "graphemes") {
            assert!(RoomName::parse(families.as_str()).is_ok());
        }
        let received: RoomName =
            serde_json::from_value(serde_json::Value::String(families)).expect("accepted");
        assert_eq!(received.as_str().chars().count(), 320);
        assert!(serde_json::from_str::<RoomName>("\"a\\u202eb\"").is_err());
        for bad in [
            "a\nb",
            "a\tb",
            "evil\u{202E}gpj.exe",
            "a\u{2066}b",
            "x\u{0}",
            "a\u{2028}b",
        ] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            RoomName::parse("Café").expect("valid").key(),
            RoomName::parse("CAFÉ").expect("valid").key()
        );
    }

    #[cfg(feature = "nfc")]
    #[test]
    fn names_are_stored_in_nfc() {
        let decomposed = RoomName::parse("Cafe\u{301}").expect("valid");
        assert_eq!(decomposed.as_str(), "Caf\u{e9}");
        let name = DisplayName::parse("Zoe\u{308}").expect("valid");
        assert_eq!(name.as_str(), "Zo\u{eb}");
    }

    #[test]
    fn display_names_follow_the_name_rules() {
        assert_eq!(
            DisplayName::parse("张三丰").expect("valid").as_str(),
            "张三丰"
        );
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse("a\u{202D}b").is_err());
        assert!(DisplayName::parse("名".repeat(65)).is_err());
        let err = DisplayName::parse("").expect_err("empty").to_string();
        assert!(err.contains("Display name"), "{err}");
    }

    #[test]
    fn message_text_is_bounded_by_characters_not_bytes() {
        assert!(MessageText::parse("hi").is_ok());
        assert!(MessageText::parse("   \n").is_err());
        assert!(MessageText::parse("").is_err());
        assert!(MessageText::parse("é".repeat(MAX_MESSAGE_CHARS)).is_ok());
        assert!(matches!(
            MessageText::parse("é".repeat(MAX_MESSAGE_CHARS + 1)),
            Err(ValueError::MessageTooLong(_))
        ));
        assert!(matches!(
            MessageText::parse(" "),
            Err(ValueError::MessageText(_))
        ));
        // Invisible characters alone are blank too.
        for blank in [
            "\0",
            "\u{200B}",
            "\u{2800}\u{2800}",
            "\u{FEFF}",
            "\u{200D}\u{3164} \u{2060}",
        ] {
            assert!(
                matches!(MessageText::parse(blank), Err(ValueError::MessageText(_))),
                "{blank:?} accepted"
            );
        }
        assert!(MessageText::parse("\u{200B}hi").is_ok());
        assert!(MessageText::parse("👍🏽").is_ok());
        // Stored as sent: no trimming.
        assert_eq!(
            MessageText::parse("  hi  ").expect("valid").as_str(),
            "  hi  "
        );
    }

    #[test]
    fn client_ids_are_short_tokens() {
        assert!(ClientId::parse("0b9f2c1e-6a54-4c55-9d7e-2f1d3c4b5a69").is_ok());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("a".repeat(65)).is_err());
        assert!(ClientId::parse("a b").is_err());
    }

    #[test]
    fn deserializing_runs_the_same_rules() {
        let ok: Result<Username, _> = serde_json::from_str("\"alice\"");
        assert!(ok.is_ok());
        let bad: Result<Username, _> = serde_json::from_str("\"a\"");
        let err = bad.expect_err("too short").to_string();
        assert!(err.contains("at least 3"), "{err}");
    }
}
