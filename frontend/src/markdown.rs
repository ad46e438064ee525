//! Safe Markdown for chat messages: the subset people type in a chat, rendered as DOM nodes.
//!
//! A full CommonMark parser (pulldown-cmark) would add about 70 KB gzipped to the client, most
//! of it the HTML entity table and case-folding data that a chat does not need: more than the
//! rest of the budget. This module parses what people use in a chat instead, in a few kilobytes:
//!
//! - blocks: paragraphs (a line break is kept), fenced code blocks (```` ``` ````), block quotes
//!   (`>`), unordered (`-`, `*`, `+`) and ordered (`1.`) lists, nested by indentation;
//! - inline: code spans, `**strong**` / `__strong__`, `*em*` / `_em_`, `~~strike~~`,
//!   `[text](url)` links, bare `http(s)://` URLs and `<https://...>`, backslash escapes.
//!
//! Safety comes from the output, not from cleaning the input: the renderer only ever creates
//! elements from a fixed list and text nodes (never `innerHTML`), so `<script>` or
//! `<img onerror>` in a message is shown as the characters typed. A link's address must be
//! `http:`, `https:` or `mailto:` ([`safe_href`]); anything else (`javascript:`, `data:`) stays
//! text. Links open in a new tab with `rel="noopener noreferrer"`. Nesting is bounded
//! ([`MAX_DEPTH`]), so a hostile message cannot exhaust the stack.

/// How deep quotes, lists and emphasis may nest; deeper markup is shown as text.
pub const MAX_DEPTH: usize = 12;

/// A block of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph.
    Para(Vec<Inline>),
    /// A fenced code block, shown as typed.
    Code(String),
    /// A block quote.
    Quote(Vec<Block>),
    /// A list: ordered ones carry their first number.
    List(Option<u64>, Vec<Vec<Block>>),
}

/// Inline content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// Plain text.
    Text(String),
    /// A code span.
    Code(String),
    /// Emphasis.
    Em(Vec<Inline>),
    /// Strong emphasis.
    Strong(Vec<Inline>),
    /// Struck through.
    Strike(Vec<Inline>),
    /// A link to a safe address.
    Link(String, Vec<Inline>),
    /// A line break inside a paragraph.
    Break,
}

/// The text of a message without its Markdown marks, on one line (for previews).
pub fn plain(src: &str) -> String {
    fn inlines(out: &mut String, list: &[Inline]) {
        for i in list {
            match i {
                Inline::Text(t) | Inline::Code(t) => out.push_str(t),
                Inline::Em(l) | Inline::Strong(l) | Inline::Strike(l) | Inline::Link(_, l) => {
                    inlines(out, l);
                }
                Inline::Break => out.push(' '),
            }
        }
    }
    fn blocks(out: &mut String, list: &[Block]) {
        for b in list {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            match b {
                Block::Para(l) => inlines(out, l),
                Block::Code(t) => out.push_str(&t.replace('\n', " ")),
                Block::Quote(l) => blocks(out, l),
                Block::List(_, items) => items.iter().for_each(|i| blocks(out, i)),
            }
        }
    }
    let mut out = String::new();
    blocks(&mut out, &parse(src));
    out
}

/// The address of a link if it is safe to follow: `http:`, `https:` or `mailto:`, without
/// spaces or control characters.
pub fn safe_href(url: &str) -> Option<&str> {
    let url = url.trim();
    let scheme = url.split_once(':')?.0.to_ascii_lowercase();
    let allowed = matches!(scheme.as_str(), "http" | "https" | "mailto");
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    (allowed && clean && url.len() > scheme.len() + 1).then_some(url)
}

/// Parses a message.
pub fn parse(src: &str) -> Vec<Block> {
    let lines: Vec<&str> = src.lines().collect();
    blocks(&lines, 0)
}

/// The marker of a list item on `line`: (ordered start, width of the marker and its space).
fn list_marker(line: &str) -> Option<(Option<u64>, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let bytes = rest.as_bytes();
    if matches!(bytes.first(), Some(b'-' | b'*' | b'+')) && matches!(bytes.get(1), Some(b' ')) {
        return Some((None, indent + 2));
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=9).contains(&digits)
        && matches!(bytes.get(digits), Some(b'.' | b')'))
        && matches!(bytes.get(digits + 1), Some(b' '))
    {
        let start = rest[..digits].parse().ok();
        return Some((start, indent + digits + 2));
    }
    None
}

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with("```")
}

fn is_quote(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn blocks(lines: &[&str], depth: usize) -> Vec<Block> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() {
            i += 1;
        } else if is_fence(line) {
            let mut code = Vec::new();
            i += 1;
            while i < lines.len() && !is_fence(lines[i]) {
                code.push(lines[i]);
                i += 1;
            }
            i += 1; // the closing fence, if any
            out.push(Block::Code(code.join("\n")));
        } else if is_quote(line) && depth < MAX_DEPTH {
            let mut inner = Vec::new();
            while i < lines.len() && is_quote(lines[i]) {
                let rest = &lines[i].trim_start()[1..];
                inner.push(rest.strip_prefix(' ').unwrap_or(rest));
                i += 1;
            }
            out.push(Block::Quote(blocks(&inner, depth + 1)));
        } else if let (Some((start, _)), true) = (list_marker(line), depth < MAX_DEPTH) {
            let ordered = start.is_some();
            let mut items: Vec<Vec<Block>> = Vec::new();
            while i < lines.len() {
                let Some((kind, width)) =
                    list_marker(lines[i]).filter(|(k, _)| k.is_some() == ordered)
                else {
                    break;
                };
                let _ = kind;
                let mut item = vec![&lines[i][width..]];
                i += 1;
                // Indented lines (or plain text right after) continue the item.
                while i < lines.len() {
                    let next = lines[i];
                    let indent = next.len() - next.trim_start_matches(' ').len();
                    if next.trim().is_empty() || (indent < 2 && list_marker(next).is_some()) {
                        break;
                    }
                    if indent < 2 && (is_fence(next) || is_quote(next)) {
                        break;
                    }
                    item.push(&next[indent.min(width)..]);
                    i += 1;
                }
                items.push(blocks(&item, depth + 1));
            }
            out.push(Block::List(start, items));
        } else {
            let mut para = Vec::new();
            while i < lines.len() {
                let next = lines[i];
                if next.trim().is_empty()
                    || (!para.is_empty()
                        && (is_fence(next) || is_quote(next) || list_marker(next).is_some()))
                {
                    break;
                }
                para.push(next);
                i += 1;
            }
            let mut content = Vec::new();
            for (n, text) in para.iter().enumerate() {
                if n > 0 {
                    content.push(Inline::Break);
                }
                content.extend(inline(text, depth));
            }
            out.push(Block::Para(content));
        }
    }
    out
}

/// Characters a backslash can escape.
fn escapable(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// Parses inline markup.
pub fn inline(text: &str, depth: usize) -> Vec<Inline> {
    let mut out: Vec<Inline> = Vec::new();
    let mut plain = String::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    let flush = |plain: &mut String, out: &mut Vec<Inline>| {
        if !plain.is_empty() {
            out.push(Inline::Text(std::mem::take(plain)));
        }
    };
    while i < chars.len() {
        let (at, c) = chars[i];
        let rest = &text[at..];
        let prev = i.checked_sub(1).map(|p| chars[p].1);
        match c {
            '\\' if chars.get(i + 1).is_some_and(|&(_, n)| escapable(n)) => {
                plain.push(chars[i + 1].1);
                i += 2;
                continue;
            }
            '`' => {
                let run = rest.bytes().take_while(|&b| b == b'`').count();
                let fence = &rest[..run];
                if let Some(end) = rest[run..].find(fence) {
                    let code = &rest[run..run + end];
                    let code = match code.strip_prefix(' ').and_then(|c| c.strip_suffix(' ')) {
                        Some(inner) if !inner.trim().is_empty() => inner,
                        _ => code,
                    };
                    flush(&mut plain, &mut out);
                    out.push(Inline::Code(code.to_owned()));
                    i = index_at(&chars, at + run + end + run);
                    continue;
                }
                plain.push_str(fence);
                i += run;
                continue;
            }
            '*' | '_' | '~' if depth < MAX_DEPTH => {
                if let Some((node, used)) = emphasis(rest, prev, depth) {
                    flush(&mut plain, &mut out);
                    out.push(node);
                    i = index_at(&chars, at + used);
                    continue;
                }
            }
            '[' if depth < MAX_DEPTH => {
                if let Some((node, used)) = link(rest, depth) {
                    flush(&mut plain, &mut out);
                    out.push(node);
                    i = index_at(&chars, at + used);
                    continue;
                }
            }
            '<' => {
                if let Some(end) = rest.find('>')
                    && let Some(url) = safe_href(&rest[1..end]).filter(|u| u.contains("//"))
                {
                    flush(&mut plain, &mut out);
                    out.push(Inline::Link(
                        url.to_owned(),
                        vec![Inline::Text(url.to_owned())],
                    ));
                    i = index_at(&chars, at + end + 1);
                    continue;
                }
            }
            'h' | 'H' if !prev.is_some_and(char::is_alphanumeric) => {
                if let Some(len) = bare_url(rest) {
                    flush(&mut plain, &mut out);
                    let url = &rest[..len];
                    out.push(Inline::Link(
                        url.to_owned(),
                        vec![Inline::Text(url.to_owned())],
                    ));
                    i = index_at(&chars, at + len);
                    continue;
                }
            }
            _ => {}
        }
        plain.push(c);
        i += 1;
    }
    flush(&mut plain, &mut out);
    out
}

/// The index in `chars` of the character at byte `at` (or the end).
fn index_at(chars: &[(usize, char)], at: usize) -> usize {
    chars.partition_point(|&(b, _)| b < at)
}

/// Emphasis starting at `rest`: the node and how many bytes it used.
fn emphasis(rest: &str, prev: Option<char>, depth: usize) -> Option<(Inline, usize)> {
    let c = rest.chars().next()?;
    let double = rest[c.len_utf8()..].starts_with(c);
    let width = if double { 2 } else { 1 };
    if c == '~' && !double {
        return None;
    }
    // An underscore inside a word (snake_case) is not emphasis.
    if c == '_' && prev.is_some_and(char::is_alphanumeric) {
        return None;
    }
    let delim = &rest[..width];
    let body_start = width;
    let after = rest[body_start..].chars().next()?;
    if after.is_whitespace() {
        return None;
    }
    // The first closing run after at least one character, not preceded by a space.
    let mut search = body_start + after.len_utf8();
    loop {
        let mut found = rest[search..].find(delim)? + search;
        // In a longer run (`***` closing `**` around an inner `*`), close with its last ones.
        let run = rest[found..].chars().take_while(|&r| r == c).count() * c.len_utf8();
        if c != '~' && run > width && run <= 3 {
            found += run - width;
        }
        let before = rest[..found].chars().next_back()?;
        let next = rest[found + width..].chars().next();
        let underscore_ok = c != '_' || !next.is_some_and(char::is_alphanumeric);
        // A single `*` must not close on the first half of a `**`.
        let single_ok = double || !rest[found + width..].starts_with(c);
        if !before.is_whitespace() && underscore_ok && single_ok {
            let inner = inline(&rest[body_start..found], depth + 1);
            let node = match (c, double) {
                ('~', _) => Inline::Strike(inner),
                (_, true) => Inline::Strong(inner),
                _ => Inline::Em(inner),
            };
            return Some((node, found + width));
        }
        search = found + width;
    }
}

/// A `[text](url)` link starting at `rest`, if its address is safe.
fn link(rest: &str, depth: usize) -> Option<(Inline, usize)> {
    let mut level = 0usize;
    let mut close = None;
    for (i, c) in rest.char_indices() {
        match c {
            '[' => level += 1,
            ']' => {
                level -= 1;
                if level == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let tail = rest[close + 1..].strip_prefix('(')?;
    let end = tail.find(')')?;
    let target = tail[..end].trim();
    let target = target
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(target);
    let href = safe_href(target)?;
    let label = inline(&rest[1..close], depth + 1);
    Some((Inline::Link(href.to_owned(), label), close + 2 + end + 1))
}

/// The length of a bare `http://` or `https://` URL at the start of `rest`, without the
/// punctuation that ends a sentence or an unmatched closing parenthesis.
fn bare_url(rest: &str) -> Option<usize> {
    let lower: String = rest
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return None;
    };
    // Characters that cannot stand in an address unescaped end it.
    let mut len = rest
        .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '`'))
        .unwrap_or(rest.len());
    loop {
        let url = &rest[..len];
        let last = url.chars().next_back()?;
        let unmatched_paren = last == ')' && url.matches('(').count() < url.matches(')').count();
        if matches!(
            last,
            '.' | ',' | ':' | ';' | '!' | '?' | '\'' | '"' | '*' | '_' | '~'
        ) || unmatched_paren
        {
            len -= last.len_utf8();
        } else {
            break;
        }
    }
    (len > scheme).then_some(len)
}

/// Renders a message's blocks as DOM nodes under `parent` (text nodes and a fixed set of
/// elements only; see the module docs).
pub fn render(parent: &web_sys::Element, blocks: &[Block]) {
    if let Some(doc) = parent.owner_document() {
        for block in blocks {
            render_block(&doc, parent, block);
        }
    }
}

fn child(doc: &web_sys::Document, parent: &web_sys::Node, tag: &str) -> Option<web_sys::Element> {
    let el = doc.create_element(tag).ok()?;
    parent.append_child(&el).ok()?;
    Some(el)
}

fn text(doc: &web_sys::Document, parent: &web_sys::Node, s: &str) {
    let _ = parent.append_child(&doc.create_text_node(s));
}

fn render_block(doc: &web_sys::Document, parent: &web_sys::Node, block: &Block) {
    match block {
        Block::Para(inlines) => {
            if let Some(p) = child(doc, parent, "p") {
                render_inlines(doc, &p, inlines);
            }
        }
        Block::Code(code) => {
            if let Some(pre) = child(doc, parent, "pre")
                && let Some(c) = child(doc, &pre, "code")
            {
                text(doc, &c, code);
            }
        }
        Block::Quote(inner) => {
            if let Some(q) = child(doc, parent, "blockquote") {
                for b in inner {
                    render_block(doc, &q, b);
                }
            }
        }
        Block::List(start, items) => {
            let tag = if start.is_some() { "ol" } else { "ul" };
            if let Some(list) = child(doc, parent, tag) {
                if let Some(n) = start.filter(|&n| n != 1) {
                    let _ = list.set_attribute("start", &n.to_string());
                }
                for item in items {
                    if let Some(li) = child(doc, &list, "li") {
                        for b in item {
                            render_block(doc, &li, b);
                        }
                    }
                }
            }
        }
    }
}

fn render_inlines(doc: &web_sys::Document, parent: &web_sys::Node, inlines: &[Inline]) {
    for inline in inlines {
        let (tag, inner) = match inline {
            Inline::Text(s) => {
                text(doc, parent, s);
                continue;
            }
            Inline::Break => {
                child(doc, parent, "br");
                continue;
            }
            Inline::Code(s) => {
                if let Some(c) = child(doc, parent, "code") {
                    text(doc, &c, s);
                }
                continue;
            }
            Inline::Link(href, label) => {
                if let Some(a) = child(doc, parent, "a") {
                    let _ = a.set_attribute("href", href);
                    let _ = a.set_attribute("target", "_blank");
                    let _ = a.set_attribute("rel", "noopener noreferrer");
                    render_inlines(doc, &a, label);
                }
                continue;
            }
            Inline::Em(inner) => ("em", inner),
            Inline::Strong(inner) => ("strong", inner),
            Inline::Strike(inner) => ("del", inner),
        };
        if let Some(el) = child(doc, parent, tag) {
            render_inlines(doc, &el, inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Inline {
        Inline::Text(s.into())
    }

    #[test]
    fn plain_text_drops_the_marks() {
        assert_eq!(
            plain("**bold** and _em_ `code` [link](https://x.example)\n> quoted"),
            "bold and em code link quoted"
        );
    }

    fn para(src: &str) -> Vec<Inline> {
        match parse(src).as_slice() {
            [Block::Para(inlines)] => inlines.clone(),
            other => panic!("expected one paragraph, got {other:?}"),
        }
    }

    #[test]
    fn emphasis_code_and_strike() {
        assert_eq!(
            para("a *b* **c** ~~d~~ `e*f*`"),
            vec![
                t("a "),
                Inline::Em(vec![t("b")]),
                t(" "),
                Inline::Strong(vec![t("c")]),
                t(" "),
                Inline::Strike(vec![t("d")]),
                t(" "),
                Inline::Code("e*f*".into()),
            ]
        );
        assert_eq!(
            para("**bold *and em***"),
            vec![Inline::Strong(vec![
                t("bold "),
                Inline::Em(vec![t("and em")])
            ])]
        );
        // Not emphasis: snake_case, a lone star, stars around spaces, an escape.
        assert_eq!(para("snake_case_name"), vec![t("snake_case_name")]);
        assert_eq!(para("2 * 3 * 4"), vec![t("2 * 3 * 4")]);
        assert_eq!(para("\\*not em\\*"), vec![t("*not em*")]);
        assert_eq!(
            para("_em_ here"),
            vec![Inline::Em(vec![t("em")]), t(" here")]
        );
    }

    #[test]
    fn raw_html_is_text() {
        assert_eq!(
            para("<script>alert(1)</script><img src=x onerror=alert(1)>"),
            vec![t("<script>alert(1)</script><img src=x onerror=alert(1)>")]
        );
    }

    #[test]
    fn only_safe_links_are_links() {
        assert_eq!(
            para("[site](https://example.org/a?b=c)"),
            vec![Inline::Link(
                "https://example.org/a?b=c".into(),
                vec![t("site")]
            )]
        );
        assert_eq!(
            para("[mail](mailto:a@b.org)"),
            vec![Inline::Link("mailto:a@b.org".into(), vec![t("mail")])]
        );
        for hostile in [
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x](data:text/html,<b>)",
            "[x]( javascript:alert(1) )",
            "[x](vbscript:msgbox)",
        ] {
            let out = para(hostile);
            assert!(
                out.iter().all(|i| !matches!(i, Inline::Link(..))),
                "{hostile}: {out:?}"
            );
        }
        assert_eq!(safe_href("javascript:alert(1)"), None);
        assert_eq!(safe_href("https://a b"), None);
        assert_eq!(safe_href("http:"), None);
    }

    #[test]
    fn bare_urls_become_links_without_trailing_punctuation() {
        assert_eq!(
            para("see https://example.org/x_(y). Or http://a.cn/你好, ok"),
            vec![
                t("see "),
                Inline::Link(
                    "https://example.org/x_(y)".into(),
                    vec![t("https://example.org/x_(y)")]
                ),
                t(". Or "),
                Inline::Link("http://a.cn/你好".into(), vec![t("http://a.cn/你好")]),
                t(", ok"),
            ]
        );
        assert_eq!(
            para("(https://example.org)"),
            vec![
                t("("),
                Inline::Link("https://example.org".into(), vec![t("https://example.org")]),
                t(")")
            ]
        );
        assert_eq!(para("xhttps://no"), vec![t("xhttps://no")]);
        assert_eq!(
            para("<a href=\"https://e.org\">"),
            vec![
                t("<a href=\""),
                Inline::Link("https://e.org".into(), vec![t("https://e.org")]),
                t("\">")
            ]
        );
    }

    #[test]
    fn blocks_quotes_lists_and_code() {
        let src = "intro\nsecond line\n\n> quoted *text*\n> more\n\n- one\n- two\n  - nested\n\n3. three\n4. four\n\n```rust\nlet x = *y; <b>\n```\nafter";
        let blocks = parse(src);
        assert_eq!(
            blocks,
            vec![
                Block::Para(vec![t("intro"), Inline::Break, t("second line")]),
                Block::Quote(vec![Block::Para(vec![
                    t("quoted "),
                    Inline::Em(vec![t("text")]),
                    Inline::Break,
                    t("more")
                ])]),
                Block::List(
                    None,
                    vec![
                        vec![Block::Para(vec![t("one")])],
                        vec![
                            Block::Para(vec![t("two")]),
                            Block::List(None, vec![vec![Block::Para(vec![t("nested")])]])
                        ],
                    ]
                ),
                Block::List(
                    Some(3),
                    vec![
                        vec![Block::Para(vec![t("three")])],
                        vec![Block::Para(vec![t("four")])]
                    ]
                ),
                Block::Code("let x = *y; <b>".into()),
                Block::Para(vec![t("after")]),
            ]
        );
    }

    #[test]
    fn hostile_nesting_and_size_stay_bounded() {
        let deep = ">".repeat(5_000) + " x";
        let blocks = parse(&deep);
        assert_eq!(blocks.len(), 1);
        let stars = "*".repeat(4_000);
        assert!(!parse(&stars).is_empty());
        let nested = "*a ".repeat(1_000) + &"*".repeat(1_000);
        assert!(!parse(&nested).is_empty());
        let code = format!("```\n{}\n```", "x".repeat(4_000));
        assert_eq!(parse(&code), vec![Block::Code("x".repeat(4_000))]);
        let unclosed = "[".repeat(2_000) + "](https://x.org)";
        assert!(!parse(&unclosed).is_empty());
    }
}
