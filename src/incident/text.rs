//! The one inbound text pipeline. Every piece of free text a person types (a title, an
//! update, a note, a reason, a post-mortem section) passes through [`clean`] once, in the
//! core, before it is stored: whatever the surface, what is stored is the same.
//!
//! Edges first undo their platform's own escaping (Slack's `&amp;`, `<@U…|name>`), so the
//! core sees what the person typed. The core then drops what no reader wants (terminal
//! escape sequences, control characters, bidirectional overrides that make text read
//! differently from how it is stored), refuses a NUL byte, and enforces the limits below.
//! Escaping on the way out is each adapter's job, per platform.

use super::error::UserError;

/// A kind of free text, with its limit in characters (Unicode scalar values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Title,
    Update,
    Note,
    Summary,
    Reason,
    ActionItem,
    PostmortemSection,
    /// A person named in a command (`assign … <user>`, `action add … --owner <user>`).
    Person,
    /// What the declare form says is known so far, recorded as the first note.
    Description,
}

impl Field {
    /// The most characters a field may hold. The README lists these.
    pub const fn limit(self) -> usize {
        match self {
            Self::Title => 200,
            Self::Update | Self::Note | Self::Summary => 4_000,
            Self::Reason | Self::ActionItem => 500,
            Self::PostmortemSection => 20_000,
            Self::Person => 100,
            Self::Description => 4_000,
        }
    }

    /// The field as named in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Update => "update",
            Self::Note => "note",
            Self::Summary => "summary",
            Self::Reason => "reason",
            Self::ActionItem => "action item",
            Self::PostmortemSection => "post-mortem section",
            Self::Person => "user",
            Self::Description => "description",
        }
    }

    /// Whether the text may span lines (a title and a reason are one line).
    pub const fn multiline(self) -> bool {
        !matches!(self, Self::Title | Self::Reason | Self::Person)
    }
}

/// Normalizes one piece of typed text for storage, or says in a sentence why it can't be
/// stored. Empty input stays empty (callers decide whether text is required).
pub fn clean(field: Field, raw: &str) -> Result<String, UserError> {
    if raw.contains('\0') {
        return Err(UserError::invalid(format!(
            "The {} contains a NUL byte, which firebreak cannot store; paste it as text.",
            field.name()
        )));
    }
    let out = sanitize(raw, field.multiline());
    let text = out.trim();
    let count = text.chars().count();
    if count > field.limit() {
        return Err(UserError::invalid(format!(
            "The {} is {} characters; the limit is {}. {}",
            field.name(),
            thousands(count),
            thousands(field.limit()),
            advice(field)
        )));
    }
    Ok(text.to_string())
}

/// [`clean`] for optional text: `None` stays `None`, and text that cleans to nothing too.
pub fn clean_optional(field: Field, raw: Option<&str>) -> Result<Option<String>, UserError> {
    match raw {
        None => Ok(None),
        Some(raw) => clean(field, raw).map(|t| (!t.is_empty()).then_some(t)),
    }
}

/// A display name a platform reported (Slack's `users.info`), made safe to store and show:
/// one line, no controls or overrides, at most [`Field::Person`]'s limit. Never fails:
/// a name is not something a person can be asked to fix.
pub fn display_name(raw: &str) -> String {
    let one_line = sanitize(raw, false);
    let trimmed = one_line.trim();
    match trimmed.char_indices().nth(Field::Person.limit()) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

/// Drops what no reader wants from `raw`: ANSI escape sequences (7-bit and C1), control
/// characters (C0 including NUL, DEL, C1) and bidirectional overrides and isolates. Line
/// breaks (`\r\n`, `\r`, `\n`) become `\n` and tabs stay when `multiline`, else both
/// become spaces. Used for storage ([`clean`]) and again for the terminal, for rows stored
/// before this pipeline existed.
pub fn sanitize(raw: &str, multiline: bool) -> String {
    let (line_break, tab) = if multiline { ('\n', '\t') } else { (' ', ' ') };
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape_sequence(&mut chars),
            '\u{9b}' => skip_to_final_byte(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push(line_break);
                }
            }
            '\n' => out.push(line_break),
            '\t' => out.push(tab),
            c if is_dropped(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Control characters (C0, DEL, C1) and the bidirectional embeddings, overrides, isolates
/// and the Arabic letter mark, which can make text display as something else
/// (CVE-2021-42574).
fn is_dropped(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// Skips the rest of an ANSI escape sequence after ESC: CSI (`ESC [ … final`), a string
/// (OSC `ESC ]`, DCS `ESC P`, SOS, PM, APC: up to BEL or ST), or a two-character escape.
fn skip_escape_sequence(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_to_final_byte(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        _ => {}
    }
}

fn skip_to_final_byte(chars: &mut Chars<'_>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// Up to and including the string terminator: BEL, ST (`\u{9c}`) or `ESC \`.
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                break;
            }
            _ => {}
        }
    }
}

fn advice(field: Field) -> &'static str {
    match field {
        Field::Title => "Keep it short and put details in an update.",
        Field::Reason | Field::ActionItem => "Keep it to a sentence or two.",
        Field::Person => "Name one person.",
        _ => "Split it, or link to a document with the rest.",
    }
}

/// `4000` as `4,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `text` within `max` characters, for any platform's plain-text field (a GitHub status
/// description, say): cut between whole characters (grapheme clusters, so a flag or an
/// accent is never split), ending in "…" when it was cut.
pub fn fit_graphemes(text: &str, max: usize) -> String {
    use unicode_segmentation::UnicodeSegmentation;
    if text.chars().count() <= max {
        return text.to_string();
    }
    let budget = max.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for g in text.graphemes(true) {
        let n = g.chars().count();
        if used + n > budget {
            break;
        }
        used += n;
        out.push_str(g);
    }
    let mut out = out.trim_end().to_string();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_controls_are_dropped() {
        assert_eq!(
            clean(Field::Update, "\u{1b}[2Jcleared\u{1b}[31m red\u{7} bell").unwrap(),
            "cleared red bell"
        );
        assert_eq!(
            clean(Field::Note, "\u{1b}]0;title\u{7}after").unwrap(),
            "after"
        );
        assert_eq!(
            clean(Field::Note, "\u{1b}]8;;http://x\u{1b}\\link").unwrap(),
            "link"
        );
        assert_eq!(clean(Field::Note, "a\u{85}b\u{7f}c").unwrap(), "abc");
    }

    #[test]
    fn bidi_overrides_are_neutralized() {
        assert_eq!(
            clean(Field::Title, "admin\u{202e}gnp.exe").unwrap(),
            "admingnp.exe"
        );
        assert_eq!(clean(Field::Title, "a\u{2066}b\u{2069}").unwrap(), "ab");
    }

    #[test]
    fn nul_is_refused_with_a_sentence() {
        let e = clean(Field::Update, "a\0b").unwrap_err().to_string();
        assert!(e.contains("NUL"), "{e}");
    }

    #[test]
    fn newlines_survive_where_they_belong() {
        assert_eq!(
            clean(Field::Update, "one\r\ntwo\rthree\n\tfour").unwrap(),
            "one\ntwo\nthree\n\tfour"
        );
        assert_eq!(
            clean(Field::Title, "one\ntwo\tthree").unwrap(),
            "one two three"
        );
    }

    #[test]
    fn limits_name_the_field_and_the_limit() {
        assert!(clean(Field::Title, &"x".repeat(200)).is_ok());
        let e = clean(Field::Title, &"x".repeat(201))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("title is 201 characters; the limit is 200"),
            "{e}"
        );
        let e = clean(Field::Update, &"é".repeat(4001))
            .unwrap_err()
            .to_string();
        assert!(e.contains("4,001 characters; the limit is 4,000"), "{e}");
        assert!(clean(Field::Update, &"😀".repeat(4000)).is_ok());
    }

    #[test]
    fn emoji_combining_and_markup_are_kept_as_typed() {
        for s in [
            "e\u{301}clair 👩🏽‍💻",
            "<b>bold</b> & 'quotes'",
            "'; DROP TABLE incidents; --",
            "<!channel> @here",
        ] {
            assert_eq!(clean(Field::Update, s).unwrap(), s);
        }
    }

    #[test]
    fn optional_text_that_cleans_to_nothing_is_none() {
        assert_eq!(
            clean_optional(Field::Reason, Some(" \u{7} ")).unwrap(),
            None
        );
        assert_eq!(clean_optional(Field::Reason, None).unwrap(), None);
    }
}
