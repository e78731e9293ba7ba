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
    crate::chat::slack::mrkdwn::fit_plain(line.trim(), STATUS_DESCRIPTION)
}

/// `text` led by the incident key (`INC-2: …`), unless it already starts with it: an
/// incident's freeze reason is its headline, "INC-2 [SEV1] …", and "INC-2: INC-2 …" says
/// the key twice.
pub fn keyed(key: Option<&str>, text: &str) -> String {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return text.to_string();
    };
    let already = text
        .strip_prefix(key)
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '-'));
    if already {
        text.to_string()
    } else {
        format!("{key}: {text}")
    }
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
        assert_eq!(
            keyed(Some("INC-2"), "INC-2 [SEV1] db down declared"),
            "INC-2 [SEV1] db down declared"
        );
        assert_eq!(keyed(Some("INC-2"), "release week"), "INC-2: release week");
        assert_eq!(keyed(Some("INC-2"), "INC-20 down"), "INC-2: INC-20 down");
        assert_eq!(keyed(None, "release week"), "release week");
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
