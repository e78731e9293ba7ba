//! Text firebreak writes to GitHub, made safe for it.
//!
//! - Commit status descriptions are at most 140 characters ([`STATUS_DESCRIPTION`]): longer
//!   ones are cut between whole characters (grapheme clusters) and end in "…".
//! - Pull request titles and bodies and commit messages are rendered by GitHub, which turns
//!   `@user` and `@org/team` into notifications and `#123`, `GH-123` and `owner/repo#123`
//!   into cross-references on other issues. What people typed must do neither, so
//!   [`neutralize`] puts an invisible word joiner (U+2060) after the `@`, the `#` and the
//!   `GH-`. The text reads the same and copies almost the same; it just never links.
//!   (Backticks would also work in Markdown, but not in titles or commit messages.)

use unicode_segmentation::UnicodeSegmentation;

/// GitHub's limit for a commit status `description`.
pub const STATUS_DESCRIPTION: usize = 140;

const JOINER: char = '\u{2060}';

/// A commit status description: one line, at most 140 characters.
pub fn status_description(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::incident::text::fit_graphemes(line.trim(), STATUS_DESCRIPTION)
}

/// The incident key a status description should lead with (`INC-2: …`): none when the
/// reason already starts with it. An incident's freeze reason is its headline, "INC-2
/// [SEV1] …" (a drill's "[DRILL] INC-2 [SEV1] …"), and "INC-2: INC-2 …" says the key twice.
pub fn key_to_add<'a>(key: Option<&'a str>, reason: Option<&str>) -> Option<&'a str> {
    let key = key.filter(|k| !k.is_empty())?;
    let said = reason
        .map(without_drill_label)
        .and_then(|r| r.strip_prefix(key))
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '-'));
    (!said).then_some(key)
}

/// A reason without the `[DRILL] ` an incident's headline starts with for a drill: a
/// drill's status says DRILL once, up front.
pub fn without_drill_label(reason: &str) -> &str {
    reason.strip_prefix("[DRILL] ").unwrap_or(reason)
}

/// Untrusted text for a pull request or commit message: no live `@mention`, `#123` or
/// `GH-123` (see the module documentation).
pub fn neutralize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let graphemes: Vec<&str> = text.graphemes(true).collect();
    for (i, g) in graphemes.iter().enumerate() {
        out.push_str(g);
        let next = graphemes.get(i + 1).copied().unwrap_or("");
        let starts_word = next
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
        let breaks = match *g {
            "@" => starts_word,
            "#" => next.starts_with(|c: char| c.is_ascii_digit()),
            "-" => {
                i >= 2
                    && graphemes[i - 2].eq_ignore_ascii_case("g")
                    && graphemes[i - 1].eq_ignore_ascii_case("h")
                    && next.starts_with(|c: char| c.is_ascii_digit())
            }
            _ => false,
        };
        if breaks {
            out.push(JOINER);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_descriptions_fit_140_on_one_line() {
        assert_eq!(status_description("INC-3: db down"), "INC-3: db down");
        let long = status_description(&format!("INC-3: {}", "👍🏽".repeat(100)));
        assert!(long.chars().count() <= 140);
        assert!(long.ends_with("👍🏽…"), "{long}");
        assert_eq!(status_description("a\nb\tc\u{1b}[2J"), "a b c [2J");
    }

    #[test]
    fn the_incident_key_is_said_once() {
        let key = Some("INC-2");
        assert_eq!(key_to_add(key, Some("INC-2 [SEV1] db down declared")), None);
        assert_eq!(key_to_add(key, Some("release week")), key);
        assert_eq!(key_to_add(key, Some("INC-20 down")), key);
        assert_eq!(key_to_add(key, None), key);
        assert_eq!(key_to_add(None, Some("release week")), None);
        assert_eq!(
            key_to_add(key, Some("[DRILL] INC-2 [SEV1] db down declared")),
            None,
            "a drill's headline names the key too"
        );
    }

    #[test]
    fn mentions_and_references_are_broken() {
        let j = JOINER;
        assert_eq!(
            neutralize("ping @alice and @org/team about #123, GH-45 and o/r#6"),
            format!("ping @{j}alice and @{j}org/team about #{j}123, GH-{j}45 and o/r#{j}6")
        );
        assert_eq!(neutralize("a@b.c"), format!("a@{j}b.c"));
        assert_eq!(
            neutralize("# heading, C# and @ alone"),
            "# heading, C# and @ alone"
        );
        assert_eq!(neutralize("✅ INC-42 gh-7"), format!("✅ INC-42 gh-{j}7"));
    }
}
