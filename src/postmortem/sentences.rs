//! The timeline told in sentences: "Severity raised from SEV2 to SEV1 by Carol." rather
//! than `severity_changed, slack:U0CAROL: Severity SEV2 → SEV1`. Pure: a stored entry and
//! the names of the people in it in, a sentence (and the author's own text, for entries
//! that carry one) out. An entry whose text is not in the shape its kind writes is told
//! as it was stored, never dropped.

use crate::incident::model::Severity;
use crate::incident::timeline::EntryKind;

/// One entry as a sentence, plus the author's own Markdown for status updates. (Notes and
/// pinned messages are quoted as plain text: they are chat, not written for the document.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub sentence: String,
    pub body: Option<String>,
}

/// `text` is the entry's text with people already by name; `actor` the actor's name.
pub fn tell(kind: EntryKind, text: &str, actor: &str) -> Told {
    let sentence = match kind {
        EntryKind::Declared => declared(text, actor),
        EntryKind::SeverityChanged => severity_changed(text, actor),
        EntryKind::StatusChanged => status_changed(text, actor),
        EntryKind::RoleAssigned => role_assigned(text, actor),
        EntryKind::Update => return authored(format!("Status update posted by {actor}"), text),
        EntryKind::Note => Some(format!("Note by {actor}: {text}")),
        EntryKind::Pinned => Some(format!("Message pinned from chat by {actor}: {text}")),
        EntryKind::FreezeRequested | EntryKind::UnfreezeRequested | EntryKind::FreezeExempted => {
            Some(format!("{} (by {actor})", text.trim_end_matches('.')))
        }
        _ => None,
    };
    Told {
        sentence: full_stop(sentence.unwrap_or_else(|| text.to_string())),
        body: None,
    }
}

fn authored(sentence: String, text: &str) -> Told {
    Told {
        sentence: format!("{sentence}:"),
        body: Some(text.to_string()),
    }
}

/// "Declared SEV1 (drill): Title" → "Declared as SEV1 (drill) by Carol: Title".
fn declared(text: &str, actor: &str) -> Option<String> {
    let rest = text.strip_prefix("Declared ")?;
    let (severity, title) = rest.split_once(": ")?;
    Some(format!("Declared as {severity} by {actor}: {title}"))
}

/// "Severity SEV2 → SEV1" → "Severity raised from SEV2 to SEV1 by Carol".
fn severity_changed(text: &str, actor: &str) -> Option<String> {
    let (from, to) = arrow(text.strip_prefix("Severity ")?)?;
    let (a, b): (Severity, Severity) = (from.parse().ok()?, to.parse().ok()?);
    let way = if b < a { "raised" } else { "lowered" };
    Some(format!("Severity {way} from {from} to {to} by {actor}"))
}

/// "Status investigating → identified" → "Status changed from investigating to identified
/// by Carol".
fn status_changed(text: &str, actor: &str) -> Option<String> {
    let (from, to) = arrow(text.strip_prefix("Status ")?)?;
    Some(format!("Status changed from {from} to {to} by {actor}"))
}

/// "commander: Bob (was Alice)" → "Bob took over as commander from Alice (assigned by
/// Carol)"; "commander: Bob" → "Bob became commander (assigned by Carol)".
fn role_assigned(text: &str, actor: &str) -> Option<String> {
    let (role, rest) = text.split_once(": ")?;
    let by = if actor.is_empty() {
        String::new()
    } else {
        format!(" (assigned by {actor})")
    };
    Some(
        match rest.strip_suffix(')').and_then(|r| r.split_once(" (was ")) {
            Some((who, was)) => format!("{who} took over as {role} from {was}{by}"),
            None => format!("{rest} became {role}{by}"),
        },
    )
}

fn arrow(text: &str) -> Option<(&str, &str)> {
    let (from, to) = text.split_once(" → ")?;
    Some((from.trim(), to.trim()))
}

/// Ends a sentence with a full stop unless it already ends in punctuation.
fn full_stop(mut s: String) -> String {
    let s_trim = s.trim_end();
    if !s_trim.ends_with(['.', '!', '?', ':', ')']) {
        s.truncate(s_trim.len());
        s.push('.');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(kind: EntryKind, text: &str) -> String {
        tell(kind, text, "Carol").sentence
    }

    #[test]
    fn changes_read_as_sentences() {
        assert_eq!(
            said(EntryKind::SeverityChanged, "Severity SEV2 → SEV1"),
            "Severity raised from SEV2 to SEV1 by Carol."
        );
        assert_eq!(
            said(EntryKind::SeverityChanged, "Severity SEV1 → SEV3"),
            "Severity lowered from SEV1 to SEV3 by Carol."
        );
        assert_eq!(
            said(
                EntryKind::StatusChanged,
                "Status investigating → identified"
            ),
            "Status changed from investigating to identified by Carol."
        );
        assert_eq!(
            said(
                EntryKind::Declared,
                "Declared SEV1: Checkout API returns 502"
            ),
            "Declared as SEV1 by Carol: Checkout API returns 502."
        );
        assert_eq!(
            said(EntryKind::RoleAssigned, "commander: Bob (was Alice)"),
            "Bob took over as commander from Alice (assigned by Carol)"
        );
        assert_eq!(
            said(EntryKind::RoleAssigned, "scribe: Dan"),
            "Dan became scribe (assigned by Carol)"
        );
    }

    #[test]
    fn updates_and_notes_keep_the_authors_text_apart() {
        let told = tell(EntryKind::Update, "Rolled back **v42**", "Carol");
        assert_eq!(told.sentence, "Status update posted by Carol:");
        assert_eq!(told.body.as_deref(), Some("Rolled back **v42**"));
    }

    #[test]
    fn an_entry_in_an_unexpected_shape_is_told_as_stored() {
        assert_eq!(
            said(EntryKind::SeverityChanged, "Severity went up"),
            "Severity went up."
        );
        assert_eq!(
            said(EntryKind::EffectSucceeded, "Posted the notice"),
            "Posted the notice."
        );
    }
}
