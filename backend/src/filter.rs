//! Moderation filters for chat messages.
//!
//! A moderator stores a list of [`Rule`]s per scope (one list server-wide and
//! one per room). Each rule is either a keyword or a regular expression, and
//! either refuses the whole message or masks the matched text with `*`.
//!
//! Rules are compiled once into a [`RuleSet`] whenever the list changes, so
//! that checking a message never re-parses a pattern. Every pattern goes
//! through the `regex` crate, whose matching time is linear in the size of
//! the message, and the compiled size of each pattern is capped, so a
//! hostile or careless rule can neither hang the server nor eat its memory.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use unicode_segmentation::UnicodeSegmentation;

/// Longest pattern accepted, in characters (not bytes), so that a rule stays
/// readable in a moderation screen and cheap to compile.
pub const MAX_PATTERN_CHARS: usize = 200;

/// Most rules accepted in one scope (a room, or server-wide), so that
/// checking a message stays fast however many rules moderators add.
pub const MAX_RULES: usize = 100;

/// Cap on the compiled program of one regular expression. Counted
/// repetitions of big Unicode classes blow up when compiled (each copy of
/// `\w` is tens of KiB); this turns them into a clear error instead of
/// megabytes per rule. 1 MiB still accepts `\w{1,20}` (256 KiB would stop at
/// `\w{5}`), while 100 such rules stay around 100 MiB at the very worst.
const REGEX_SIZE_LIMIT: usize = 1024 * 1024;

/// Cap on the lazily built search automaton of one regular expression, so a
/// rule cannot grow memory while messages are checked. When it is reached the
/// `regex` crate falls back to slower (but still linear-time) engines.
const REGEX_DFA_SIZE_LIMIT: usize = 1024 * 1024;

/// Cap on how deeply groups and repetitions may nest, so parsing a rule
/// cannot exhaust the stack.
const REGEX_NEST_LIMIT: u32 = 50;

/// How a rule's pattern is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// A word or phrase matched as a whole word, ignoring case. This is what
    /// most moderators want, and it cannot be written wrongly.
    Keyword,
    /// A regular expression in the syntax of the `regex` crate, for patterns
    /// a keyword cannot express (phone numbers, contact handles, ...). It is
    /// case-sensitive unless it starts with `(?i)`, and no word boundary is
    /// added: the expression says exactly what it matches.
    Regex,
}

/// What happens to a message that a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The whole message is rejected, and the sender is told which rule did it.
    Refuse,
    /// The message goes through with every matched character replaced by `*`.
    Mask,
}

/// One moderation rule, as the caller stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The caller's identifier, reported back when the rule refuses a message.
    pub id: i64,
    /// Whether `pattern` is a keyword or a regular expression.
    pub kind: RuleKind,
    /// The keyword or expression, as the moderator typed it.
    pub pattern: String,
    /// What to do with a message the rule matches.
    pub action: Action,
}

/// Why a rule cannot be used. It names the offending pattern and carries the
/// reason, which for a bad regular expression is the `regex` parser's own
/// message, so the moderator sees exactly where the expression goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The pattern of the rule that was refused, as given.
    pub pattern: String,
    /// Human-readable reason; may span several lines (the regex parser points
    /// at the faulty spot with a caret).
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid filter rule {:?}: {}",
            self.pattern, self.message
        )
    }
}

impl std::error::Error for RuleError {}

impl RuleError {
    fn new(pattern: &str, message: impl Into<String>) -> Self {
        RuleError {
            pattern: pattern.to_owned(),
            message: message.into(),
        }
    }
}

/// Checks one rule before it is stored, so a moderator gets the error when
/// saving the rule rather than the whole rule list failing to compile later.
/// Compiles the pattern with the same limits as [`RuleSet::compile`], so a
/// rule that passes here is accepted there.
pub fn validate(kind: RuleKind, pattern: &str) -> Result<(), RuleError> {
    Matcher::new(kind, pattern).map(|_| ())
}

/// A compiled list of rules for one scope.
///
/// Build it once whenever the rule list changes and share it (for example in
/// an `Arc`): it is `Send + Sync`, and checking a message only reads it.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Rules whose action is [`Action::Refuse`], in the caller's order, so the
    /// first one that matches is the one reported.
    refusing: Vec<CompiledRule>,
    /// Rules whose action is [`Action::Mask`].
    masking: Vec<CompiledRule>,
}

/// The result of checking a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// The message may be posted, as this text. It borrows the original when
    /// nothing was masked, so clean messages cost no allocation.
    Allowed(Cow<'a, str>),
    /// The message must not be posted because of this rule.
    Refused {
        /// The refusing rule's [`Rule::id`].
        rule_id: i64,
        /// The refusing rule's [`Rule::pattern`], to tell the sender why.
        pattern: String,
    },
}

impl RuleSet {
    /// Compiles a scope's rules, failing on the first rule that
    /// [`validate`] would refuse, or when there are more than [`MAX_RULES`].
    pub fn compile(rules: Vec<Rule>) -> Result<RuleSet, RuleError> {
        if let Some(extra) = rules.get(MAX_RULES) {
            return Err(RuleError::new(
                &extra.pattern,
                format!(
                    "too many rules: {} given, at most {MAX_RULES} are allowed in one scope",
                    rules.len()
                ),
            ));
        }
        let mut set = RuleSet::empty();
        for rule in rules {
            let matcher = Matcher::new(rule.kind, &rule.pattern)?;
            let compiled = CompiledRule {
                id: rule.id,
                pattern: rule.pattern,
                matcher,
            };
            match rule.action {
                Action::Refuse => set.refusing.push(compiled),
                Action::Mask => set.masking.push(compiled),
            }
        }
        Ok(set)
    }

    /// Compiles rules that were validated when they were stored: a rule that
    /// no longer compiles (a newer `regex` crate, a hand-edited database) is
    /// skipped and reported, and the count is not capped (two concurrent
    /// additions may pass it by one), so one bad rule never turns off the others.
    pub fn compile_stored(rules: Vec<Rule>) -> (RuleSet, Vec<RuleError>) {
        let mut set = RuleSet::empty();
        let mut skipped = Vec::new();
        for rule in rules {
            match Matcher::new(rule.kind, &rule.pattern) {
                Ok(matcher) => {
                    let compiled = CompiledRule {
                        id: rule.id,
                        pattern: rule.pattern,
                        matcher,
                    };
                    match rule.action {
                        Action::Refuse => set.refusing.push(compiled),
                        Action::Mask => set.masking.push(compiled),
                    }
                }
                Err(e) => skipped.push(e),
            }
        }
        (set, skipped)
    }

    /// A set with no rules, for scopes that have none: it allows every
    /// message unchanged.
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// Whether the set has no rules, so the caller can skip checking.
    pub fn is_empty(&self) -> bool {
        self.refusing.is_empty() && self.masking.is_empty()
    }

    /// Applies every rule to `text`. If any refusing rule matches, the first
    /// such rule in list order is reported; otherwise the text is returned
    /// with every masking rule's matches replaced by `*`.
    pub fn check<'a>(&self, text: &'a str) -> Verdict<'a> {
        check_all(&[self], text)
    }
}

/// Applies several sets in order, typically the server-wide set then the
/// room's. A refusal by any set wins (the first refusing rule of the first
/// set that refuses is reported). Otherwise the masks of all sets are found
/// in the original text and applied together, so one set's `*` can never
/// trigger or hide another set's rule.
pub fn check_all<'a>(sets: &[&RuleSet], text: &'a str) -> Verdict<'a> {
    for set in sets {
        for rule in &set.refusing {
            if rule.matcher.is_match(text) {
                return Verdict::Refused {
                    rule_id: rule.id,
                    pattern: rule.pattern.clone(),
                };
            }
        }
    }
    let mut ranges = Vec::new();
    for set in sets {
        for rule in &set.masking {
            rule.matcher.collect_matches(text, &mut ranges);
        }
    }
    if ranges.is_empty() {
        Verdict::Allowed(Cow::Borrowed(text))
    } else {
        Verdict::Allowed(Cow::Owned(mask(text, ranges)))
    }
}

#[derive(Debug, Clone)]
struct CompiledRule {
    id: i64,
    pattern: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// A case-insensitive literal search; every candidate is then checked for
    /// word boundaries on the sides that need one.
    Keyword {
        re: Regex,
        boundary_before: bool,
        boundary_after: bool,
    },
    Regex(Regex),
}

impl Matcher {
    fn new(kind: RuleKind, pattern: &str) -> Result<Matcher, RuleError> {
        let chars = pattern.chars().count();
        if chars > MAX_PATTERN_CHARS {
            return Err(RuleError::new(
                pattern,
                format!(
                    "pattern is {chars} characters long, at most {MAX_PATTERN_CHARS} are allowed"
                ),
            ));
        }
        match kind {
            RuleKind::Keyword => {
                let keyword = pattern.trim();
                let (Some(first), Some(last)) =
                    (keyword.chars().next(), keyword.chars().next_back())
                else {
                    return Err(RuleError::new(pattern, "keyword is empty"));
                };
                // Runs of whitespace inside a phrase match any run of
                // whitespace, so "bad  word" or a line break cannot dodge it.
                let source = keyword
                    .split_whitespace()
                    .map(regex::escape)
                    .collect::<Vec<_>>()
                    .join(r"\s+");
                let re = build_regex(&source, true).map_err(|e| RuleError::new(pattern, e))?;
                Ok(Matcher::Keyword {
                    re,
                    boundary_before: is_spaced_word_char(first),
                    boundary_after: is_spaced_word_char(last),
                })
            }
            RuleKind::Regex => {
                if pattern.is_empty() {
                    return Err(RuleError::new(
                        pattern,
                        "regular expression is empty (it would match nothing)",
                    ));
                }
                let re = build_regex(pattern, false).map_err(|e| RuleError::new(pattern, e))?;
                Ok(Matcher::Regex(re))
            }
        }
    }

    /// Whether the rule matches anywhere in `text` (ignoring empty matches).
    fn is_match(&self, text: &str) -> bool {
        let mut found = false;
        self.for_each_match(text, |_, _| {
            found = true;
            false
        });
        found
    }

    /// Appends the byte range of every non-empty match to `out`.
    fn collect_matches(&self, text: &str, out: &mut Vec<(usize, usize)>) {
        self.for_each_match(text, |start, end| {
            out.push((start, end));
            true
        });
    }

    /// Calls `f` with each non-empty match's byte range, left to right, until
    /// `f` returns false.
    fn for_each_match(&self, text: &str, mut f: impl FnMut(usize, usize) -> bool) {
        match self {
            Matcher::Regex(re) => {
                for m in re.find_iter(text) {
                    // An expression such as `x*` matches the empty string at
                    // every position; there is nothing there to refuse or mask.
                    if !m.is_empty() && !f(m.start(), m.end()) {
                        return;
                    }
                }
            }
            Matcher::Keyword {
                re,
                boundary_before,
                boundary_after,
            } => {
                let mut at = 0;
                while let Some(m) = re.find_at(text, at) {
                    let before_ok = !boundary_before
                        || text[..m.start()]
                            .chars()
                            .next_back()
                            .is_none_or(|c| !is_spaced_word_char(c));
                    let after_ok = !boundary_after
                        || text[m.end()..]
                            .chars()
                            .next()
                            .is_none_or(|c| !is_spaced_word_char(c));
                    if before_ok && after_ok {
                        if !f(m.start(), m.end()) {
                            return;
                        }
                        at = m.end();
                    } else {
                        // Not a whole word here; a match may still start at
                        // the next character (e.g. "aa" in "aaa " is found at
                        // 1 after failing at 0), so don't skip the whole match.
                        let step = text[m.start()..].chars().next().map_or(1, char::len_utf8);
                        at = m.start() + step;
                    }
                }
            }
        }
    }
}

fn build_regex(source: &str, case_insensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(source)
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => format!(
                "{e} (use fewer or smaller counted repetitions, e.g. `\\w+` rather than \
                 `\\w{{50}}`: in Unicode mode every `\\w` covers thousands of characters)"
            ),
            _ => e.to_string(),
        })
}

/// Letters, digits and combining marks of scripts that separate words with
/// spaces. Chinese, Japanese and Korean (and Thai, Lao, Khmer, Myanmar, which
/// don't use spaces between words either) are left out: next to those a
/// keyword can only be found by its own characters, not by a gap.
/// Combining marks count as part of a word so that a keyword does not match
/// the front of a decomposed accented letter.
static SPACED_WORD_CHAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\A[[\p{Alphabetic}\p{N}\p{M}]--[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Hangul}\p{scx=Bopomofo}\p{scx=Yi}\p{scx=Thai}\p{scx=Lao}\p{scx=Khmer}\p{scx=Myanmar}]]\z",
    )
    .expect("built-in character class is valid")
});

/// Whether `c` is part of a word in a script that separates words by spaces,
/// i.e. whether a keyword edge next to it is *not* a word boundary.
fn is_spaced_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    let mut buf = [0; 4];
    SPACED_WORD_CHAR.is_match(c.encode_utf8(&mut buf))
}

/// Replaces every grapheme cluster touched by one of `ranges` (byte ranges,
/// possibly overlapping, in any order) with a single `*`. Whole clusters are
/// masked so that no half of an accented letter or emoji sequence is left
/// behind; every other cluster is copied byte for byte.
fn mask(text: &str, mut ranges: Vec<(usize, usize)>) -> String {
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut next = merged.iter().peekable();
    for (start, cluster) in text.grapheme_indices(true) {
        let end = start + cluster.len();
        while next.next_if(|r| r.1 <= start).is_some() {}
        match next.peek() {
            Some(r) if r.0 < end => out.push('*'),
            _ => out.push_str(cluster),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: i64, kind: RuleKind, pattern: &str, action: Action) -> Rule {
        Rule {
            id,
            kind,
            pattern: pattern.to_owned(),
            action,
        }
    }

    fn set(rules: &[(RuleKind, &str, Action)]) -> RuleSet {
        RuleSet::compile(
            rules
                .iter()
                .enumerate()
                .map(|(i, (k, p, a))| rule(i as i64 + 1, *k, p, *a))
                .collect(),
        )
        .expect("rules compile")
    }

    fn allowed(text: &str) -> Verdict<'_> {
        Verdict::Allowed(Cow::Borrowed(text))
    }

    fn refused(rule_id: i64, pattern: &str) -> Verdict<'static> {
        Verdict::Refused {
            rule_id,
            pattern: pattern.to_owned(),
        }
    }

    fn masked(text: &str) -> Verdict<'static> {
        Verdict::Allowed(Cow::Owned(text.to_owned()))
    }

    use Action::{Mask, Refuse};
    use RuleKind::{Keyword, Regex as Re};

    #[test]
    fn keyword_english_refuse() {
        let s = set(&[(Keyword, "spam", Refuse)]);
        assert_eq!(s.check("buy spam now"), refused(1, "spam"));
        assert_eq!(s.check("buy ham now"), allowed("buy ham now"));
    }

    #[test]
    fn keyword_chinese_refuse() {
        let s = set(&[(Keyword, "坏蛋", Refuse)]);
        assert_eq!(s.check("你是坏蛋吗"), refused(1, "坏蛋"));
        assert_eq!(s.check("你是好人吗"), allowed("你是好人吗"));
    }

    #[test]
    fn keyword_english_mask() {
        let s = set(&[(Keyword, "darn", Mask)]);
        assert_eq!(s.check("oh darn it, DARN!"), masked("oh **** it, ****!"));
    }

    #[test]
    fn keyword_chinese_mask() {
        let s = set(&[(Keyword, "坏蛋", Mask)]);
        assert_eq!(s.check("你是坏蛋吗？坏蛋！"), masked("你是**吗？**！"));
    }

    #[test]
    fn keyword_ignores_case() {
        let s = set(&[(Keyword, "hello", Refuse)]);
        assert_eq!(s.check("HELLO there"), refused(1, "hello"));
        assert_eq!(s.check("HeLLo"), refused(1, "hello"));
        let s = set(&[(Keyword, "spam", Refuse)]);
        assert_eq!(s.check("SPAM."), refused(1, "spam"));
        // Unicode simple case folding, as `(?i)` does it.
        let s = set(&[(Keyword, "straße", Mask), (Keyword, "école", Mask)]);
        assert_eq!(s.check("STRAẞE ÉCOLE"), masked("****** *****"));
    }

    #[test]
    fn keyword_whole_word_only() {
        let s = set(&[(Keyword, "ass", Refuse)]);
        assert_eq!(s.check("first class"), allowed("first class"));
        assert_eq!(s.check("I assume so"), allowed("I assume so"));
        assert_eq!(s.check("passage"), allowed("passage"));
        assert_eq!(s.check("you ass!"), refused(1, "ass"));
        assert_eq!(s.check("ass"), refused(1, "ass"));
        assert_eq!(s.check("(ASS)"), refused(1, "ass"));
        // A letter of another spaced script is still part of the word.
        assert_eq!(s.check("éass"), allowed("éass"));
        // A combining accent after the keyword makes a different letter.
        assert_eq!(s.check("asse\u{301}"), allowed("asse\u{301}"));
        assert_eq!(s.check("ass\u{301}"), allowed("ass\u{301}"));
    }

    #[test]
    fn keyword_next_to_cjk() {
        let s = set(&[(Keyword, "ass", Refuse)]);
        assert_eq!(s.check("你ass好"), refused(1, "ass"));
        assert_eq!(s.check("あassア"), refused(1, "ass"));
        assert_eq!(s.check("바보ass야"), refused(1, "ass"));
        // Japanese long vowel mark belongs to kana, so it is a boundary too.
        assert_eq!(s.check("ーass"), refused(1, "ass"));
        let s = set(&[(Keyword, "ass", Mask)]);
        assert_eq!(s.check("你ass好"), masked("你***好"));
    }

    #[test]
    fn keyword_search_resumes_at_next_character() {
        let s = set(&[(Keyword, "spam", Mask)]);
        assert_eq!(s.check("xspam spam"), masked("xspam ****"));
        let s = set(&[(Keyword, "aa", Mask)]);
        // Fails at 0 ("aaa" continues), fails at 1, fails everywhere.
        assert_eq!(s.check("aaa"), allowed("aaa"));
        assert_eq!(s.check("aaa aa"), masked("aaa **"));
        let s = set(&[(Keyword, "ab", Refuse)]);
        assert_eq!(s.check("aab ab"), refused(1, "ab"));
        // The candidate at 1 fails ('b' before it); the whole word starts
        // inside that failed candidate, at 3.
        let s = set(&[(Keyword, "a.a", Mask)]);
        assert_eq!(s.check("ba.a.a"), masked("ba.***"));
    }

    #[test]
    fn keyword_edges_without_letters_need_no_boundary() {
        let s = set(&[(Keyword, "c++", Mask)]);
        assert_eq!(s.check("I like C++."), masked("I like ***."));
        assert_eq!(s.check("c++c++"), masked("******"));
        assert_eq!(s.check("abc++"), allowed("abc++"));
        assert_eq!(s.check("c++x"), masked("***x"));
    }

    #[test]
    fn keyword_is_trimmed_and_phrase_spacing_is_flexible() {
        let s = set(&[(Keyword, "  bad word ", Refuse)]);
        assert_eq!(s.check("a bad word"), refused(1, "  bad word "));
        assert_eq!(s.check("a BAD\n  word"), refused(1, "  bad word "));
        assert_eq!(s.check("a badword"), allowed("a badword"));
        // Trimming also makes the edges letters again, so they need a boundary.
        assert_eq!(s.check("abad word"), allowed("abad word"));
        assert_eq!(s.check("bad wordy"), allowed("bad wordy"));
    }

    #[test]
    fn keyword_regex_characters_are_literal() {
        let s = set(&[(Keyword, "a.b", Refuse)]);
        assert_eq!(s.check("axb"), allowed("axb"));
        assert_eq!(s.check("see a.b here"), refused(1, "a.b"));
    }

    #[test]
    fn regex_english_refuse_and_mask() {
        let s = set(&[(Re, r"\d{3}-\d{4}", Refuse)]);
        assert_eq!(s.check("call 555-1234"), refused(1, r"\d{3}-\d{4}"));
        assert_eq!(s.check("call 55-1234"), allowed("call 55-1234"));
        let s = set(&[(Re, r"\d{3}-\d{4}", Mask)]);
        assert_eq!(
            s.check("call 555-1234 or 555-9876"),
            masked("call ******** or ********")
        );
    }

    #[test]
    fn regex_chinese_refuse_and_mask() {
        let s = set(&[(Re, r"微信\s*\w+", Refuse)]);
        assert_eq!(s.check("加我微信 abc123"), refused(1, r"微信\s*\w+"));
        assert_eq!(s.check("加我QQ"), allowed("加我QQ"));
        let s = set(&[(Re, r"微信\s*\w+", Mask)]);
        assert_eq!(s.check("加我微信 abc123。"), masked("加我*********。"));
        assert_eq!(s.check("加微信号码"), masked("加****"));
    }

    #[test]
    fn regex_is_case_sensitive_unless_asked() {
        let s = set(&[(Re, "spam", Mask), (Re, "(?i)eggs", Mask)]);
        assert_eq!(s.check("SPAM spam EGGS"), masked("SPAM **** ****"));
    }

    #[test]
    fn invalid_regex_carries_parser_message() {
        let err = validate(Re, "(unclosed").expect_err("refused");
        assert_eq!(err.pattern, "(unclosed");
        assert!(err.message.contains("unclosed group"), "{}", err.message);
        let shown = err.to_string();
        assert!(shown.contains("(unclosed"), "{shown}");
        assert!(shown.contains("unclosed group"), "{shown}");
        // The same error comes out of compile.
        let err = RuleSet::compile(vec![
            rule(1, Keyword, "fine", Mask),
            rule(2, Re, "(unclosed", Refuse),
        ])
        .expect_err("refused");
        assert!(err.message.contains("unclosed group"), "{}", err.message);
    }

    #[test]
    fn regex_too_big_when_compiled_is_refused() {
        // Accepted by the regex crate's default 10 MiB limit, not by ours.
        assert!(regex::Regex::new(r"\w{30}").is_ok());
        let err = validate(Re, r"\w{30}").expect_err("refused");
        assert!(err.message.contains("size limit"), "{}", err.message);
        assert!(err.message.contains(r"\w+"), "{}", err.message);
        assert_eq!(validate(Re, r"\w{1,20}"), Ok(()));
        let deep = format!("{}a{}", "(".repeat(60), ")".repeat(60));
        let err = validate(Re, &deep).expect_err("refused");
        assert!(err.message.contains("nest"), "{}", err.message);
    }

    #[test]
    fn pattern_too_long() {
        let ok = "好".repeat(MAX_PATTERN_CHARS);
        assert_eq!(validate(Keyword, &ok), Ok(()));
        assert_eq!(validate(Re, &ok), Ok(()));
        let long = "好".repeat(MAX_PATTERN_CHARS + 1);
        for kind in [Keyword, Re] {
            let err = validate(kind, &long).expect_err("refused");
            assert!(err.message.contains("at most 200"), "{}", err.message);
        }
        assert!(RuleSet::compile(vec![rule(1, Keyword, &long, Mask)]).is_err());
    }

    #[test]
    fn stored_rules_skip_a_bad_one_and_keep_the_others() {
        let mut stored: Vec<Rule> = (0..=MAX_RULES)
            .map(|i| rule(i as i64, Keyword, &format!("word{i}"), Mask))
            .collect();
        stored.push(rule(999, Re, "(unclosed", Refuse));
        stored.push(rule(1000, Keyword, "zebra", Refuse));
        let (set, skipped) = RuleSet::compile_stored(stored);
        assert_eq!(skipped.len(), 1);
        assert!(matches!(
            set.check("a zebra"),
            Verdict::Refused { rule_id: 1000, .. }
        ));
    }

    #[test]
    fn too_many_rules() {
        let rules = |n: usize| {
            (0..n)
                .map(|i| rule(i as i64, Keyword, &format!("word{i}"), Mask))
                .collect::<Vec<_>>()
        };
        assert!(RuleSet::compile(rules(MAX_RULES)).is_ok());
        let err = RuleSet::compile(rules(MAX_RULES + 1)).expect_err("refused");
        assert!(err.message.contains("too many rules"), "{}", err.message);
        assert_eq!(err.pattern, "word100");
    }

    #[test]
    fn blank_keyword_is_invalid() {
        for blank in ["", "   ", "\t\n", "\u{3000}"] {
            let err = validate(Keyword, blank).expect_err("refused");
            assert!(err.message.contains("empty"), "{}", err.message);
        }
        assert!(validate(Re, "").is_err());
        assert_eq!(validate(Re, " "), Ok(()));
    }

    #[test]
    fn pathological_regex_is_linear() {
        let text = format!("{}b", "a".repeat(100_000));
        let s = set(&[(Re, "(a+)+$", Refuse)]);
        assert_eq!(s.check(&text), allowed(&text));
        let s = set(&[(Re, "(a+)+b", Refuse)]);
        assert_eq!(s.check(&text), refused(1, "(a+)+b"));
        let s = set(&[(Re, "(a+)+$", Mask)]);
        assert_eq!(s.check(&text), allowed(&text));
    }

    #[test]
    fn empty_matches_are_ignored() {
        let s = set(&[(Re, "x*", Refuse)]);
        assert_eq!(s.check("abc"), allowed("abc"));
        assert_eq!(s.check(""), allowed(""));
        assert_eq!(s.check("axxb"), refused(1, "x*"));
        let s = set(&[(Re, "x*", Mask)]);
        assert_eq!(s.check("abc"), allowed("abc"));
        assert_eq!(s.check("axxbx"), masked("a**b*"));
        let s = set(&[(Re, "^", Mask), (Re, r"\b", Mask)]);
        assert_eq!(s.check("a b"), allowed("a b"));
    }

    #[test]
    fn overlapping_masks_merge() {
        let s = set(&[(Re, "abcd", Mask), (Re, "cdef", Mask)]);
        assert_eq!(s.check("xabcdefy"), masked("x******y"));
        let s = set(&[(Keyword, "坏蛋", Mask), (Re, "蛋糕", Mask)]);
        assert_eq!(s.check("坏蛋糕点"), masked("***点"));
        // One rule inside another.
        let s = set(&[(Re, "b", Mask), (Re, "abc", Mask)]);
        assert_eq!(s.check("abcd"), masked("***d"));
    }

    #[test]
    fn masking_keeps_other_text_and_whole_graphemes() {
        let s = set(&[(Re, "e", Mask)]);
        // A decomposed "é" is one character on screen: it becomes one '*'.
        assert_eq!(s.check("cafe\u{301} ok"), masked("caf* ok"));
        let s = set(&[(Re, "\u{200d}", Mask)]);
        let family = "👨\u{200d}👩\u{200d}👧";
        assert_eq!(s.check(&format!("[{family}]")), masked("[*]"));
        let s = set(&[(Keyword, "spam", Mask)]);
        let text = "🙂 spam\r\n\u{301}é 你好 spam";
        let Verdict::Allowed(out) = s.check(text) else {
            panic!("refused")
        };
        assert_eq!(out, "🙂 ****\r\n\u{301}é 你好 ****");
    }

    #[test]
    fn refusal_reports_first_refusing_rule() {
        let s = RuleSet::compile(vec![
            rule(10, Keyword, "nice", Mask),
            rule(20, Re, "[0-9]+", Refuse),
            rule(30, Keyword, "bad", Refuse),
        ])
        .expect("valid");
        // "bad" comes first in the text, but rule 20 comes first in the list.
        assert_eq!(s.check("bad nice 42"), refused(20, "[0-9]+"));
        assert_eq!(s.check("bad nice"), refused(30, "bad"));
        assert_eq!(s.check("nice"), masked("****"));
    }

    #[test]
    fn check_all_applies_both_sets() {
        let server = set(&[(Keyword, "spam", Mask), (Keyword, "scam", Refuse)]);
        let room = RuleSet::compile(vec![
            rule(7, Re, r"\d+", Mask),
            rule(8, Keyword, "ham", Refuse),
            rule(9, Re, r"\*+", Refuse),
        ])
        .expect("valid");
        let both = [&server, &room];
        assert_eq!(check_all(&both, "spam 123 eggs"), masked("**** *** eggs"));
        // A refusal by either set wins over masks.
        assert_eq!(check_all(&both, "spam and ham"), refused(8, "ham"));
        assert_eq!(check_all(&both, "ham scam"), refused(2, "scam"));
        // Masks from the first set do not feed the second set's rules.
        assert_eq!(check_all(&both, "spam"), masked("****"));
        assert_eq!(check_all(&[], "spam"), allowed("spam"));
        assert_eq!(
            check_all(&[&RuleSet::empty(), &room], "spam"),
            allowed("spam")
        );
    }

    #[test]
    fn empty_set_allows_everything_without_copying() {
        let s = RuleSet::empty();
        assert!(s.is_empty());
        assert!(!set(&[(Keyword, "x", Mask)]).is_empty());
        assert!(matches!(
            s.check("hello"),
            Verdict::Allowed(Cow::Borrowed("hello"))
        ));
        let s = set(&[(Keyword, "x", Mask)]);
        assert!(matches!(
            s.check("hello"),
            Verdict::Allowed(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn rule_set_is_shareable() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<RuleSet>();
        shareable::<RuleError>();
    }

    #[test]
    fn hundred_rules_on_long_message() {
        let mut rules: Vec<Rule> = (0..90)
            .map(|i| rule(i, Keyword, &format!("badword{i}"), Mask))
            .collect();
        rules.extend((90..100).map(|i| rule(i, Re, &format!(r"x{i}\d+y"), Mask)));
        let s = RuleSet::compile(rules).expect("valid");
        let mut text = "lorem ipsum 你好世界 dolor sit amet ".repeat(130);
        text.push_str("BADWORD42 x95123y");
        assert!(text.chars().count() > 4000);
        let verdict = s.check(&text);
        let Verdict::Allowed(out) = verdict else {
            panic!("refused")
        };
        assert!(
            out.ends_with("amet ********* *******"),
            "{}",
            &out[out.len() - 40..]
        );
    }
}
