//! Discord's mention syntax, turned into neutral text on the way in, so what is stored reads
//! the same on every surface and never becomes a live ping when it is shown again:
//!
//! | Discord sends            | stored as                                   |
//! |--------------------------|---------------------------------------------|
//! | `<@42>`, `<@!42>`        | `@bob` (name Discord resolved), else `discord:42` |
//! | `<@&7>`                  | `@oncall` (role name), else `@role-7`       |
//! | `<#9>`                   | `#ops` (channel name), else `#9`            |
//! | `<:party:1>`, `<a:x:2>`  | `:party:`, `:x:`                            |
//! | `<t:1700000000:R>`       | `2023-11-14 22:13 UTC`                      |
//! | `</incident declare:5>`  | `/incident declare`                         |
//!
//! `@everyone` and `@here` are plain text in Discord and stay so; what keeps them from
//! pinging is `allowed_mentions` on everything firebreak sends. Other `<…>` is kept as typed.

use chrono::DateTime;

use super::interactions::Resolved;

/// `raw` with every mention sequence Discord defines replaced by neutral text.
pub fn decode(raw: &str, names: &Resolved) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let replaced = tail[1..]
            .find(['>', '<'])
            .filter(|&j| tail.as_bytes()[1 + j] == b'>')
            .and_then(|j| Some((sequence(&tail[1..1 + j], names)?, j + 2)));
        match replaced {
            Some((text, len)) => {
                out.push_str(&text);
                rest = &tail[len..];
            }
            None => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One `<…>` (without its brackets) as text, if it is a sequence Discord defines.
fn sequence(inner: &str, names: &Resolved) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 24 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(id) = inner.strip_prefix("@&") {
        return digits(id).then(|| match names.roles.get(id) {
            Some(name) => format!("@{name}"),
            None => format!("@role-{id}"),
        });
    }
    if let Some(id) = inner.strip_prefix('@') {
        let id = id.strip_prefix('!').unwrap_or(id);
        return digits(id).then(|| match names.users.get(id) {
            Some(name) => format!("@{name}"),
            None => format!("discord:{id}"),
        });
    }
    if let Some(id) = inner.strip_prefix('#') {
        return digits(id).then(|| format!("#{}", names.channels.get(id).map_or(id, |n| n)));
    }
    if let Some(ts) = inner.strip_prefix("t:") {
        let secs = ts.split(':').next()?;
        let at = DateTime::from_timestamp(secs.parse().ok()?, 0)?;
        return Some(at.format("%Y-%m-%d %H:%M UTC").to_string());
    }
    if let Some(cmd) = inner.strip_prefix('/') {
        let (name, id) = cmd.rsplit_once(':')?;
        return digits(id).then(|| format!("/{name}"));
    }
    let emoji = inner
        .strip_prefix("a:")
        .or_else(|| inner.strip_prefix(':'))?;
    let (name, id) = emoji.split_once(':')?;
    (digits(id) && !name.is_empty()).then(|| format!(":{name}:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Resolved {
        let mut r = Resolved::default();
        r.users.insert("42".into(), "bob".into());
        r.roles.insert("7".into(), "oncall".into());
        r.channels.insert("9".into(), "ops".into());
        r
    }

    #[test]
    fn mentions_become_neutral_text() {
        let n = names();
        assert_eq!(decode("ask <@42> and <@!42>", &n), "ask @bob and @bob");
        assert_eq!(decode("<@43> knows", &n), "discord:43 knows");
        assert_eq!(decode("page <@&7> <@&8>", &n), "page @oncall @role-8");
        assert_eq!(decode("see <#9>, <#10>", &n), "see #ops, #10");
        assert_eq!(decode("<:party:1><a:spin:2>", &n), ":party::spin:");
        assert_eq!(
            decode("since <t:1700000000:R>", &n),
            "since 2023-11-14 22:13 UTC"
        );
        assert_eq!(
            decode("run </incident declare:5>", &n),
            "run /incident declare"
        );
    }

    #[test]
    fn other_angle_brackets_and_broadcasts_stay_as_typed() {
        let n = Resolved::default();
        for s in [
            "a < b > c",
            "<b>bold</b>",
            "<@bob>",
            "<@&x>",
            "<<@42>",
            "@everyone @here",
            "<",
            "x <@42",
        ] {
            let expected = s.replace("<@42>", "discord:42");
            assert_eq!(decode(s, &n), expected, "{s}");
        }
    }
}
