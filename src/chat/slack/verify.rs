//! Slack request signing: HMAC-SHA256 over `v0:{timestamp}:{raw body}`, keyed with the
//! signing secret, sent as `X-Slack-Signature: v0=<hex>`. Checked on the raw bytes before
//! anything is parsed, with the timestamp no more than five minutes from now, so a captured
//! request can't be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far the request timestamp may be from our clock, either way.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp")]
    Missing,
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    #[error("the request timestamp is more than five minutes from now")]
    Stale,
    #[error("the signature does not match")]
    BadSignature,
}

/// Verifies one request. `now` is the current Unix time in seconds.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(VerifyError::Missing);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now - ts).abs() > MAX_SKEW_SECS {
        return Err(VerifyError::Stale);
    }
    let expected = signature
        .strip_prefix("v0=")
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .ok_or(VerifyError::BadSignature)?;
    // An empty signing secret is one anyone can sign with: it matches nothing.
    if secret.trim_ascii().is_empty() {
        return Err(VerifyError::BadSignature);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| VerifyError::BadSignature)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| VerifyError::BadSignature)
}

/// Signs a body the way Slack does; for tests and the benchmark.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented worked example.
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_worked_example_verifies() {
        assert_eq!(sign(SECRET, 1531420618, BODY), SIG);
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY, 1531420618 + 10),
            Ok(())
        );
    }

    #[test]
    fn tampering_staleness_and_absence_are_rejected() {
        let now = 1531420618;
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), &body, now),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(b"other", Some(TS), Some(SIG), BODY, now),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY, now + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY, now - 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(SECRET, None, Some(SIG), BODY, now),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some("v1=abc"), BODY, now),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some("soon"), Some(SIG), BODY, now),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn an_empty_secret_verifies_nothing() {
        let now = 1531420618;
        let sig = sign(b"", now, BODY);
        assert_eq!(
            verify(b"", Some(TS), Some(&sig), BODY, now),
            Err(VerifyError::BadSignature)
        );
    }
}
