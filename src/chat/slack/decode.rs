//! Slack's escaping, undone on the way in, so what is stored is what the person typed.
//!
//! Slack sends slash-command and message text with `&`, `<` and `>` escaped as `&amp;`,
//! `&lt;` and `&gt;`, and with mentions, channels and links as control sequences in angle
//! brackets. [`decode`] turns them back into text:
//!
//! | Slack sends                       | stored as                 |
//! |-----------------------------------|---------------------------|
//! | `R&amp;D &lt;b&gt;`               | `R&D <b>`                 |
//! | `<https://x.io/a\|the doc>`       | `the doc (https://x.io/a)`|
//! | `<https://x.io>`, `<http://x.io\|x.io>` | `https://x.io`, `x.io` |
//! | `<mailto:a@x.io\|a@x.io>`         | `a@x.io`                  |
//! | `<@U1\|bob>`, `<@U1>`             | `@bob`, `@U1`             |
//! | `<#C1\|ops>`, `<#C1>`             | `#ops`, `#C1`             |
//! | `<!here>`, `<!channel>`, `<!everyone>` | `@here`, `@channel`, `@everyone` |
//! | `<!subteam^S1\|@oncall>`          | `@oncall`                 |
//! | `<!date^1700000000^{date}\|Nov 14>` | `Nov 14`                |
//!
//! User mentions also come back as [`UserRef`]s: where a command names a person
//! (`assign commander <@U1|bob>`), the edge uses the id Slack sent, never the name.
//! Form input (`view_submission` values) is not escaped by Slack and is not decoded.

/// A user Slack named by id in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    /// The Slack user id, `U024BE7LH`.
    pub id: String,
    /// How it reads in the decoded text: `@bob`, or `@U024BE7LH` without a label.
    pub shown: String,
}

/// Text as the person typed it, and the users Slack identified in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    pub text: String,
    pub users: Vec<UserRef>,
}

impl Decoded {
    /// The Slack user a word of the decoded text stands for (`@bob` or `bob`), if Slack
    /// sent that word as a mention.
    pub fn user(&self, word: &str) -> Option<&UserRef> {
        let name = word.trim_start_matches('@');
        self.users
            .iter()
            .find(|u| u.shown.trim_start_matches('@') == name)
    }
}

/// Undoes Slack's escaping in `raw`; see the module docs for the table.
pub fn decode(raw: &str) -> Decoded {
    let mut out = Decoded {
        text: String::with_capacity(raw.len()),
        users: Vec::new(),
    };
    let mut rest = raw;
    while let Some(i) = rest.find(['<', '&']) {
        out.text.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with('&') {
            let (c, len) = entity(tail);
            out.text.push_str(c);
            rest = &tail[len..];
            continue;
        }
        // A control sequence runs to the next `>`; Slack escapes every literal `<` and `>`,
        // so one without an end (or with another `<` inside) is kept as typed.
        match tail[1..].find(['>', '<']) {
            Some(j) if tail.as_bytes()[1 + j] == b'>' => {
                control(&tail[1..1 + j], &mut out);
                rest = &tail[j + 2..];
            }
            _ => {
                out.text.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.text.push_str(rest);
    out
}

/// [`decode`] when only the text matters (pinned messages, event text).
pub fn decode_text(raw: &str) -> String {
    decode(raw).text
}

/// The character an entity at the start of `s` stands for, and the entity's length.
fn entity(s: &str) -> (&'static str, usize) {
    for (name, c) in [("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")] {
        if s.starts_with(name) {
            return (c, name.len());
        }
    }
    ("&", 1)
}

/// Entities decoded (inside a control sequence, where no `<` starts anything).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let (c, len) = entity(&rest[i..]);
        out.push_str(c);
        rest = &rest[i + len..];
    }
    out.push_str(rest);
    out
}

/// One `<…>` sequence (without its brackets) as text.
fn control(inner: &str, out: &mut Decoded) {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(unescape(l)).filter(|l| !l.is_empty())),
        None => (inner, None),
    };
    let text = match target.chars().next() {
        Some('@') => {
            let id = unescape(&target[1..]);
            let shown = format!(
                "@{}",
                label.as_deref().unwrap_or(&id).trim_start_matches('@')
            );
            out.users.push(UserRef {
                id,
                shown: shown.clone(),
            });
            shown
        }
        Some('#') => format!(
            "#{}",
            label
                .unwrap_or_else(|| unescape(&target[1..]))
                .trim_start_matches('#')
        ),
        Some('!') => special(&unescape(&target[1..]), label),
        _ => link(&unescape(target), label),
    };
    out.text.push_str(&text);
}

/// `<!here>`, `<!subteam^S1|@team>`, `<!date^…|fallback>` and the like.
fn special(name: &str, label: Option<String>) -> String {
    let (kind, _) = name.split_once('^').unwrap_or((name, ""));
    match kind {
        "here" | "channel" | "everyone" => format!("@{kind}"),
        "subteam" => {
            let handle = label.unwrap_or_else(|| name["subteam^".len()..].to_string());
            format!("@{}", handle.trim_start_matches('@'))
        }
        // A date's label is the text to show where it can't be formatted.
        "date" => label.unwrap_or_default(),
        _ => label.unwrap_or_else(|| format!("@{kind}")),
    }
}

/// `<url>` or `<url|label>`: the label and the address, once if they say the same.
fn link(url: &str, label: Option<String>) -> String {
    let bare = url.strip_prefix("mailto:").unwrap_or(url);
    let Some(label) = label else {
        return bare.to_string();
    };
    let without_scheme = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(bare);
    if label == url || label == bare || label == without_scheme {
        label
    } else {
        format!("{label} ({bare})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &str) -> String {
        decode(raw).text
    }

    #[test]
    fn entities_become_characters() {
        assert_eq!(text("R&amp;D wiki &lt;b&gt; down"), "R&D wiki <b> down");
        assert_eq!(text("a &amp;amp; b"), "a &amp; b", "decoded once");
        assert_eq!(text("AT&T & co &nbsp;"), "AT&T & co &nbsp;");
        assert_eq!(
            text("x &lt;!channel&gt;"),
            "x <!channel>",
            "typed, not a ping"
        );
    }

    #[test]
    fn links() {
        assert_eq!(
            text("see <https://wiki.example/r&amp;d|the R&amp;D doc> now"),
            "see the R&D doc (https://wiki.example/r&d) now"
        );
        assert_eq!(text("<https://x.example/a>"), "https://x.example/a");
        assert_eq!(
            text("<https://x.example|https://x.example>"),
            "https://x.example"
        );
        assert_eq!(text("<http://x.example|x.example>"), "x.example");
        assert_eq!(
            text("<mailto:bob@x.example|bob@x.example>"),
            "bob@x.example"
        );
        assert_eq!(text("<mailto:bob@x.example>"), "bob@x.example");
        assert_eq!(text("<mailto:bob@x.example|Bob>"), "Bob (bob@x.example)");
        assert_eq!(text("<https://x.example|>"), "https://x.example");
    }

    #[test]
    fn users_channels_and_specials() {
        let d = decode("assign commander <@U1ABC|bob> and ping <@W2>");
        assert_eq!(d.text, "assign commander @bob and ping @W2");
        assert_eq!(
            d.users,
            [
                UserRef {
                    id: "U1ABC".into(),
                    shown: "@bob".into()
                },
                UserRef {
                    id: "W2".into(),
                    shown: "@W2".into()
                }
            ]
        );
        assert_eq!(d.user("@bob").map(|u| u.id.as_str()), Some("U1ABC"));
        assert_eq!(d.user("W2").map(|u| u.id.as_str()), Some("W2"));
        assert_eq!(d.user("@carol"), None);
        assert_eq!(text("in <#C1|ops> and <#C2>"), "in #ops and #C2");
        assert_eq!(
            text("<!here> <!channel> <!everyone> <!here|here>"),
            "@here @channel @everyone @here"
        );
        assert_eq!(text("<!subteam^S1|@oncall>"), "@oncall");
        assert_eq!(text("<!subteam^S1>"), "@S1");
        assert_eq!(
            text("at <!date^1700000000^{date_short}|Nov 14, 2023> UTC"),
            "at Nov 14, 2023 UTC"
        );
    }

    #[test]
    fn unterminated_brackets_are_kept() {
        assert_eq!(text("a < b"), "a < b");
        assert_eq!(text("<@U1 <@U2|x>"), "<@U1 @x");
        assert_eq!(text("trailing <"), "trailing <");
        assert_eq!(text("<>"), "");
        assert_eq!(text(""), "");
        assert_eq!(
            text("naïve <https://é.example|café> 👩🏽‍💻"),
            "naïve café (https://é.example) 👩🏽‍💻"
        );
    }

    #[test]
    fn plain_text_is_unchanged() {
        for s in [
            "Checkout API returns 502",
            "50% of 'users'; DROP TABLE x; --",
            "a | b > c",
        ] {
            // (`>` arrives escaped from Slack; a raw one is kept.)
            assert_eq!(text(s), s);
        }
    }
}
