//! Text that is safe to show on Discord, in one place for replies and for what the queue
//! posts: Discord's published limits, cutting to them with "…", and two ways of making
//! text safe, for the two kinds of text there are:
//!
//! - [`escape`]: text that is all user input (a title, an update in an embed, a reply)
//!   shows exactly as typed: Discord markdown is backslash-escaped, so `<@&1>` shows as
//!   text, not a role, and only the core's own `discord:ID` identities become mentions.
//! - [`defuse`]: a message firebreak composed (a channel post that quotes an update, a
//!   failure report) keeps its own markup (`<#channel>` links, code spans) while whatever
//!   it quotes cannot ping or spoof a link.
//!
//! Both give `@everyone` and `@here` a zero-width joiner so they do not even look like
//! mentions, and every message also sets `allowed_mentions` to parse nothing (see
//! [`super::embeds::allowed_mentions`]).

/// Discord's published limits, in characters.
pub mod limit {
    pub const CONTENT: usize = 2_000;
    pub const TITLE: usize = 256;
    pub const DESCRIPTION: usize = 4_096;
    pub const FIELDS: usize = 25;
    pub const FIELD_NAME: usize = 256;
    pub const FIELD_VALUE: usize = 1_024;
    pub const FOOTER: usize = 2_048;
    pub const EMBED_TOTAL: usize = 6_000;
    pub const CHANNEL_NAME: usize = 100;
    pub const CHANNEL_TOPIC: usize = 1_024;
    pub const MODAL_TITLE: usize = 45;
}

const ZWJ: char = '\u{200D}';

/// Plain text as Discord markdown that shows exactly that text: markdown escaped,
/// `@everyone`/`@here` defused, and `discord:ID` identities (how the core names chat users)
/// turned into user mentions, which ping only where `allowed_mentions` names them.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut line_start = true;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((id, tail)) = identity_at(rest) {
            out.push_str(&format!("<@{id}>"));
            rest = tail;
            line_start = false;
            continue;
        }
        let special = matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '[' | ']' | ':'
        ) || (line_start && matches!(c, '#' | '-' | '+'));
        if special {
            out.push('\\');
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        if c == '@' && (rest.starts_with("everyone") || rest.starts_with("here")) {
            out.push(ZWJ);
        }
        line_start = c == '\n' || (line_start && c.is_whitespace());
    }
    out
}

/// A composed message made inert where it quotes people: `@everyone`, `@here` and
/// `<@…>`/`<@&…>` get a zero-width joiner after their first character, so they neither
/// ping nor render as mentions; so does a masked link's `](`, so
/// `[bank.example](https://evil.example)` shows both parts. Channel links and markdown stay,
/// and the core's `discord:ID` identities become mentions (which ping only where
/// `allowed_mentions` names them). What a composed message quotes of people's text should
/// be [`escape`]d when it is composed, so it cannot format the bot's own message.
pub fn defuse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((id, tail)) = identity_at(rest) {
            out.push_str(&format!("<@{id}>"));
            rest = tail;
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        let defuse = match c {
            '@' => rest.starts_with("everyone") || rest.starts_with("here"),
            '<' => rest.starts_with('@'),
            ']' => rest.starts_with('('),
            _ => false,
        };
        if defuse {
            out.push(ZWJ);
        }
    }
    out
}

/// `discord:<digits>` at the start of `s`, at a word boundary.
fn identity_at(s: &str) -> Option<(&str, &str)> {
    let after = s.strip_prefix("discord:")?;
    let len = after.bytes().take_while(u8::is_ascii_digit).count();
    let tail = &after[len..];
    (len > 0 && !tail.starts_with(|c: char| c.is_alphanumeric())).then(|| (&after[..len], tail))
}

/// `text` (escaped or not) within `max` characters; a longer one is cut and ends in "…",
/// never leaving half an escape or half a mention before it.
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(open) = out.rfind('<') {
        if !out[open..].contains('>') {
            out.truncate(open);
        }
    }
    let trailing = out.len() - out.trim_end_matches('\\').len();
    if trailing % 2 == 1 {
        out.pop();
    }
    out.push('…');
    out
}

/// A composed message as content: defused, within 2,000 characters.
pub fn content(text: &str) -> String {
    fit(&defuse(text), limit::CONTENT)
}

/// A composed message that tags `role` (the comms role, a stored id) before `text`; the
/// role is the only mention in it.
pub fn role_content(role: &str, text: &str) -> String {
    tagged(&format!("<@&{role}> "), text)
}

/// A composed message that mentions `user` (a Discord user id the bot means to tag) before
/// `text`; that user is the only mention in it that is not defused.
pub fn user_content(user: &str, text: &str) -> String {
    tagged(&format!("<@{user}> "), text)
}

fn tagged(tag: &str, text: &str) -> String {
    let room = limit::CONTENT - tag.chars().count();
    format!("{tag}{}", fit(&defuse(text), room))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn markdown_is_escaped_and_identities_become_quiet_mentions() {
        assert_eq!(escape("a *b* _c_ `d`"), "a \\*b\\* \\_c\\_ \\`d\\`");
        assert_eq!(escape("# big\n- item"), "\\# big\n\\- item");
        assert_eq!(
            escape("<@&123> [x](http://e)"),
            "\\<@&123\\> \\[x\\](http\\://e)"
        );
        assert_eq!(escape("by discord:42."), "by <@42>.");
        assert_eq!(escape("discord:42x"), "discord\\:42x");
    }

    #[test]
    fn mass_mentions_in_user_text_are_defused() {
        let hostile = "hi @everyone and @here, <@123> <@&456> <@!7> me@example.com";
        let e = escape(hostile);
        assert!(!e.contains("@everyone") && !e.contains("@here"), "{e}");
        assert!(!e.contains(" <@"), "every < is escaped: {e}");
        assert!(e.contains("me@example.com"));
        let d = defuse(hostile);
        assert!(!d.contains("@everyone") && !d.contains("@here"), "{d}");
        assert!(
            !d.contains("<@1") && !d.contains("<@&") && !d.contains("<@!"),
            "{d}"
        );
        assert!(d.contains("me@example.com"));
        let tagged = role_content("999", "ping @everyone");
        assert!(tagged.starts_with("<@&999> ") && !tagged.contains("@everyone"));
        let nudged = user_content("42", &"late <@7> @here ".repeat(200));
        assert!(nudged.starts_with("<@42> ") && !nudged.contains("<@7>"));
        assert!(nudged.chars().count() <= limit::CONTENT);
    }

    #[test]
    fn composed_messages_keep_their_own_markup() {
        assert_eq!(defuse("see <#1> and `cmd`"), "see <#1> and `cmd`");
        assert_eq!(defuse("by discord:42."), "by <@42>.");
        assert_eq!(defuse("[a](https://x)"), format!("[a]{ZWJ}(https://x)"));
    }

    #[test]
    fn cutting_never_leaves_half_an_escape_or_mention() {
        let s = fit(&escape(&"*".repeat(3000)), 2000);
        assert!(s.chars().count() <= 2000 && !s.trim_end_matches('…').ends_with("\\\\"));
        assert!(s.trim_end_matches('…').len() % 2 == 0);
        let s = fit(&"a<@123>".repeat(400), 2000);
        assert!(!s.trim_end_matches('…').ends_with("<@12"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn fitting_keeps_short_texts_and_marks_cut_ones(text in "\\PC{0,40}", max in 1usize..30) {
            let f = fit(&text, max);
            prop_assert!(f.chars().count() <= max);
            if text.chars().count() <= max {
                prop_assert_eq!(f, text);
            } else {
                prop_assert!(f.ends_with('…'));
            }
        }

        #[test]
        fn content_never_pings_and_fits(text in "(\\PC|@everyone|@here|<@&1>|discord:1){0,3000}") {
            let c = content(&text);
            prop_assert!(c.chars().count() <= limit::CONTENT);
            prop_assert!(!c.contains("@everyone") && !c.contains("@here"));
            prop_assert!(!c.contains("<@&"), "{}", c);
        }
    }
}
