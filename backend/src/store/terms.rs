//! How message text is cut into search terms, for every store: the same cut at index time and
//! at query time, so that a query finds exactly the messages that contain it.
//!
//! Text is NFKC-normalised and lower-cased first (full-width `ＡＢＣ` is `abc`, half-width kana
//! are full-width). Then:
//! - Runs of **CJK** characters (Han, kana, Hangul), which are written without spaces, are cut
//!   into overlapping **bigrams**: `你好世界` is indexed as `你好 好世 世界`. A query run of two or
//!   more characters is the phrase of its bigrams, so `世界` finds `你好世界` and `你好世界` finds
//!   only the four characters in that order. A run of one character is also a term of its own,
//!   and every CJK character is indexed once more on its own (the `uni` part), so that a
//!   one-character query (`猫`) finds every message containing it.
//! - Everything else is left to the store's word tokenizer (letters and digits between
//!   separators, case and diacritics folded): `hello` finds `Hello, world`.
//!
//! Why bigrams and not a trigram index or a segmenter: most Chinese words are two characters,
//! which a trigram index cannot match at all; a dictionary segmenter (jieba and the like) adds
//! megabytes of dictionary, disagrees with itself between index and query on new words and names,
//! and still misses substrings of its words. Bigrams match any substring of two or more
//! characters, need no dictionary, and work the same for Japanese and Korean. The price is a
//! larger index for CJK text: about two terms per character (its bigram and itself).

use unicode_normalization::UnicodeNormalization;

/// The most terms (words and CJK runs) a query may have; more are refused.
pub const MAX_QUERY_TERMS: usize = 16;

/// A message's text as the index sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexText {
    /// The words in order, with each CJK run replaced by its bigrams (or the character alone,
    /// for a run of one), separated by spaces.
    pub body: String,
    /// Every CJK character, once each, separated by spaces.
    pub uni: String,
}

/// One term of a query. Every term must match (AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryTerm {
    /// A word (letters and digits) to find among the words of `body`.
    Word(String),
    /// A CJK run of two or more characters: the phrase of these bigrams in `body`.
    Bigrams(Vec<String>),
    /// A single CJK character: found in `uni`.
    Char(char),
}

/// Whether a character belongs to a script written without spaces between words (Han, kana,
/// Hangul), whose runs are cut into bigrams.
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{1100}'..='\u{11FF}'     // Hangul Jamo
        | '\u{2E80}'..='\u{2FDF}'   // CJK radicals, Kangxi radicals
        | '\u{3005}'..='\u{3007}'   // 々 〆 〇
        | '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{3130}'..='\u{318F}'   // Hangul compatibility Jamo
        | '\u{31F0}'..='\u{31FF}'   // Katakana phonetic extensions
        | '\u{3400}'..='\u{4DBF}'   // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'   // CJK unified ideographs
        | '\u{A960}'..='\u{A97F}'   // Hangul Jamo extended A
        | '\u{AC00}'..='\u{D7AF}'   // Hangul syllables
        | '\u{F900}'..='\u{FAFF}'   // CJK compatibility ideographs
        | '\u{20000}'..='\u{3134F}' // CJK extensions B to G
    )
}

/// A piece of normalised text: a word, or a run of CJK characters.
enum Piece {
    Word(String),
    Run(Vec<char>),
}

/// Cuts text into words and CJK runs, after NFKC and lower-casing. Separators (anything that is
/// neither a letter, a digit nor CJK) end a word; a CJK character ends a word too.
fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let normal: String = text.nfkc().flat_map(char::to_lowercase).collect();
    for c in normal.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(Piece::Word(std::mem::take(&mut word)));
            }
            run.push(c);
        } else {
            if !run.is_empty() {
                out.push(Piece::Run(std::mem::take(&mut run)));
            }
            if c.is_alphanumeric() {
                word.push(c);
            } else if !word.is_empty() {
                out.push(Piece::Word(std::mem::take(&mut word)));
            }
        }
    }
    if !word.is_empty() {
        out.push(Piece::Word(word));
    }
    if !run.is_empty() {
        out.push(Piece::Run(run));
    }
    out
}

fn bigrams(run: &[char]) -> Vec<String> {
    run.windows(2).map(|w| w.iter().collect()).collect()
}

/// The text to index for a message.
pub fn index_text(text: &str) -> IndexText {
    let mut out = IndexText::default();
    let mut seen: Vec<char> = Vec::new();
    for piece in pieces(text) {
        let terms = match piece {
            Piece::Word(w) => vec![w],
            Piece::Run(run) => {
                for &c in &run {
                    if !seen.contains(&c) {
                        seen.push(c);
                    }
                }
                if run.len() == 1 {
                    vec![run.iter().collect()]
                } else {
                    bigrams(&run)
                }
            }
        };
        for term in terms {
            if !out.body.is_empty() {
                out.body.push(' ');
            }
            out.body.push_str(&term);
        }
    }
    out.uni = seen
        .iter()
        .map(char::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    out
}

/// Why a query was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing to search for (only punctuation or spaces).
    #[error("Search for at least one letter or digit.")]
    Empty,
    /// Longer than [`shared::SEARCH_MAX_CHARS`].
    #[error("A search is at most {} characters.", shared::SEARCH_MAX_CHARS)]
    TooLong,
    /// More than [`MAX_QUERY_TERMS`] words.
    #[error("A search has at most {MAX_QUERY_TERMS} words.")]
    TooManyTerms,
}

/// Parses a query into terms. Every character that is not a letter, a digit or CJK is a
/// separator, so no syntax of any store's query language survives: quotes, `*`, `-`, `:`,
/// parentheses are gone, and `NEAR` or `OR` are plain words.
pub fn query_terms(query: &str) -> Result<Vec<QueryTerm>, QueryError> {
    if query.chars().nth(shared::SEARCH_MAX_CHARS).is_some() {
        return Err(QueryError::TooLong);
    }
    let mut terms = Vec::new();
    for piece in pieces(query) {
        let term = match piece {
            Piece::Word(w) => QueryTerm::Word(w),
            Piece::Run(run) if run.len() == 1 => QueryTerm::Char(run[0]),
            Piece::Run(run) => QueryTerm::Bigrams(bigrams(&run)),
        };
        if !terms.contains(&term) {
            terms.push(term);
        }
    }
    if terms.is_empty() {
        return Err(QueryError::Empty);
    }
    if terms.len() > MAX_QUERY_TERMS {
        return Err(QueryError::TooManyTerms);
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_runs_are_indexed_as_bigrams_and_single_characters() {
        let t = index_text("Hello, 你好世界! 猫 and ＡＢＣ");
        assert_eq!(t.body, "hello 你好 好世 世界 猫 and abc");
        assert_eq!(t.uni, "你 好 世 界 猫");
        assert_eq!(index_text("日本語のテキスト").body.split(' ').count(), 7);
    }

    #[test]
    fn queries_keep_no_syntax_and_are_bounded() {
        assert_eq!(
            query_terms("\"hello\" NEAR(* 世界) -x:y").expect("valid"),
            vec![
                QueryTerm::Word("hello".into()),
                QueryTerm::Word("near".into()),
                QueryTerm::Bigrams(vec!["世界".into()]),
                QueryTerm::Word("x".into()),
                QueryTerm::Word("y".into()),
            ]
        );
        assert_eq!(
            query_terms("猫").expect("valid"),
            vec![QueryTerm::Char('猫')]
        );
        assert_eq!(query_terms(" \"*()\" "), Err(QueryError::Empty));
        assert_eq!(query_terms(&"a".repeat(201)), Err(QueryError::TooLong));
        assert_eq!(
            query_terms(&(0..17).map(|i| format!("w{i} ")).collect::<String>()),
            Err(QueryError::TooManyTerms)
        );
    }
}
