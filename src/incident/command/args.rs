//! Reading a command's words after its verb: the incident it names, `--flags` with their
//! values, and the free text, each with a sentence for what is missing or unexpected.

use super::ParseOptions;
use crate::incident::error::UserError;
use crate::incident::model::IncidentNumber;

/// The words after the verb, with the incident and flags pulled out as they are read.
pub(super) struct Args<'a> {
    pub(super) words: Vec<&'a str>,
    /// Line breaks typed between words; see [`super::Split`].
    pub(super) breaks: std::collections::HashMap<usize, &'a str>,
    pub(super) opts: ParseOptions,
    /// The incident, once one is read.
    pub(super) target: Option<IncidentNumber>,
}

impl<'a> Args<'a> {
    pub(super) fn new(words: &[&'a str], opts: ParseOptions) -> Self {
        Self {
            words: words.to_vec(),
            breaks: Default::default(),
            opts,
            target: None,
        }
    }

    /// Reads an incident reference at the front (`INC-4`, or `4` where bare numbers are
    /// references), unless one was read already. Groups with sub-verbs call it again after
    /// the sub-verb, so `action add INC-4 …` and `action INC-4 add …` mean the same.
    pub(super) fn take_incident(&mut self) {
        if self.target.is_some() {
            return;
        }
        let Some(first) = self.words.first() else {
            return;
        };
        if let Some(n) = IncidentNumber::parse(first, self.opts.bare_number_is_ref) {
            self.target = Some(n);
            self.words.remove(0);
        }
    }

    /// Removes and returns the first word, lowercased (a sub-verb).
    pub(super) fn sub_verb(&mut self) -> Option<String> {
        let first = self.words.first()?.to_ascii_lowercase();
        self.words.remove(0);
        Some(first)
    }

    pub(super) fn flag(&mut self, name: &str) -> bool {
        let before = self.words.len();
        self.words.retain(|w| !w.eq_ignore_ascii_case(name));
        self.words.len() != before
    }

    /// `--name value` or `--name=value`.
    pub(super) fn option(&mut self, name: &str) -> Result<Option<String>, UserError> {
        let prefix = format!("{name}=");
        for i in 0..self.words.len() {
            let w = self.words[i];
            if let Some(v) = w.strip_prefix(&prefix) {
                self.words.remove(i);
                return Ok(Some(v.to_string()));
            }
            if w.eq_ignore_ascii_case(name) {
                let value = self.words.get(i + 1).copied().filter(|v| !is_flag(v));
                let Some(value) = value else {
                    return Err(UserError::invalid(format!("{name} needs a value.")));
                };
                self.words.drain(i..=i + 1);
                return Ok(Some(value.to_string()));
            }
        }
        Ok(None)
    }

    /// `--name the rest of the words`, up to the next flag; free text such as a reason.
    pub(super) fn option_rest(&mut self, name: &str) -> Option<String> {
        let i = self
            .words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(name))?;
        let end = self.words[i + 1..]
            .iter()
            .position(|w| is_flag(w))
            .map_or(self.words.len(), |p| i + 1 + p);
        let text = self.words[i + 1..end].join(" ");
        self.words.drain(i..end);
        let text = strip_quotes(text.trim()).to_string();
        (!text.is_empty()).then_some(text)
    }

    pub(super) fn single(&mut self, verb: &str, what: &str) -> Result<String, UserError> {
        match self.words.as_slice() {
            [one] => {
                let one = one.to_string();
                self.words.clear();
                Ok(one)
            }
            _ => Err(UserError::invalid(format!("`{verb}` takes {what}."))),
        }
    }

    /// The rest of the line as free text (one pair of surrounding quotes removed).
    pub(super) fn text(&mut self) -> Result<Option<String>, UserError> {
        if let Some(flag) = self.words.iter().find(|w| is_flag(w)) {
            return Err(UserError::invalid(format!("Unknown option {flag}.")));
        }
        let joined = self.joined();
        self.words.clear();
        let trimmed = strip_quotes(joined.trim());
        Ok((!trimmed.is_empty()).then(|| trimmed.to_string()))
    }

    /// The remaining words with single spaces between them, except where a line break was
    /// typed right there: that whitespace is kept as typed.
    pub(super) fn joined(&self) -> String {
        let mut out = String::new();
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                let prev = self.words[i - 1];
                let gap = self.breaks.get(&(prev.as_ptr() as usize)).filter(|gap| {
                    prev.as_ptr() as usize + prev.len() + gap.len() == word.as_ptr() as usize
                });
                out.push_str(gap.copied().unwrap_or(" "));
            }
            out.push_str(word);
        }
        out
    }

    pub(super) fn text_required(&mut self, verb: &str, what: &str) -> Result<String, UserError> {
        self.text()?.ok_or_else(|| needs(verb, what))
    }

    pub(super) fn finish(self, verb: &str) -> Result<(), UserError> {
        match self.words.first() {
            None => Ok(()),
            Some(w) if is_flag(w) => Err(UserError::invalid(format!(
                "Unknown option {w} for `{verb}`."
            ))),
            Some(w) => Err(UserError::invalid(format!(
                "Unexpected \"{w}\" after `{verb}`; see `help`."
            ))),
        }
    }
}

/// "`verb` needs what.", for required text that is missing (or cleaned down to nothing).
fn needs(verb: &str, what: &str) -> UserError {
    UserError::invalid(format!("`{verb}` needs {what}."))
}

/// Cleans required free text: the pipeline, then "needs …" if nothing is left.
pub(super) fn clean_required(
    field: crate::incident::text::Field,
    raw: &str,
    verb: &str,
    what: &str,
) -> Result<String, UserError> {
    let text = crate::incident::text::clean(field, raw)?;
    if text.is_empty() {
        return Err(needs(verb, what));
    }
    Ok(text)
}

pub(super) fn is_flag(word: &str) -> bool {
    word.len() > 2 && word.starts_with("--") && word.as_bytes()[2].is_ascii_alphabetic()
}

fn strip_quotes(s: &str) -> &str {
    for q in ['"', '\'', '“'] {
        let close = if q == '“' { '”' } else { q };
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(close) {
            return s[q.len_utf8()..s.len() - close.len_utf8()].trim();
        }
    }
    s
}
