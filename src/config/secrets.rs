//! Secrets from the environment: unset is `None`, set but empty is an error that names the
//! variable, and the value never appears in an error.

use secrecy::SecretString;

/// A secret read from the environment: `None` when the variable is unset. Set but empty
/// (or only whitespace) is an error naming the variable: an edit left half-done must stop
/// the start, not quietly switch an integration off or sign with an empty key. The value
/// itself never appears in an error.
pub fn env_secret(name: &str) -> Result<Option<SecretString>, String> {
    secret_value(name, env_value(name)?)
}

/// A comma-separated list of secrets (`GITHUB_WEBHOOK_SECRET`, which holds the old and the
/// new secret during a rotation). Empty when unset; an empty entry (`s3cret,`) is an error
/// that says which one, since an empty HMAC key would let anyone sign.
pub fn env_secret_list(name: &str) -> Result<Vec<SecretString>, String> {
    secret_list_value(name, env_value(name)?)
}

fn env_value(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

pub(super) fn secret_value(
    name: &str,
    value: Option<String>,
) -> Result<Option<SecretString>, String> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Err(format!(
            "{name} is set but empty; give it a value, or unset it"
        )),
        Some(v) => Ok(Some(SecretString::from(v))),
    }
}

pub(super) fn secret_list_value(
    name: &str,
    value: Option<String>,
) -> Result<Vec<SecretString>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    if value.trim().is_empty() {
        return Err(format!(
            "{name} is set but empty; give it a value, or unset it"
        ));
    }
    value
        .split(',')
        .enumerate()
        .map(|(i, entry)| {
            let entry = entry.trim();
            if entry.is_empty() {
                Err(format!(
                    "{name} has an empty entry (the {}); remove the stray comma.",
                    ordinal(i + 1)
                ))
            } else {
                Ok(SecretString::from(entry.to_string()))
            }
        })
        .collect()
}

/// `1st`, `2nd`, `3rd`, `4th`, … `11th`, `12th`, `13th`, … `21st`.
pub(super) fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
