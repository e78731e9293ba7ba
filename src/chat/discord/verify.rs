//! Discord request signing: Ed25519 over `{X-Signature-Timestamp}{raw body}`, sent as hex in
//! `X-Signature-Ed25519`, checked with the application's public key (serenity's
//! `interactions_endpoint::Verifier`) on the raw bytes before anything is parsed. The
//! timestamp must be within five minutes of our clock, so a captured request can't be
//! replayed later.

use serenity::interactions_endpoint::Verifier;

/// How far the request timestamp may be from our clock, either way.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing X-Signature-Ed25519 or X-Signature-Timestamp")]
    Missing,
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    #[error("the request timestamp is more than five minutes from now")]
    Stale,
    #[error("the signature does not match")]
    BadSignature,
}

/// The application's public key, ready to check requests.
#[derive(Clone)]
pub struct DiscordVerifier(Verifier);

impl DiscordVerifier {
    /// From `DISCORD_PUBLIC_KEY` (64 hex digits); an error sentence if it is not a key.
    pub fn new(public_key_hex: &str) -> Result<Self, String> {
        let bad = || {
            "DISCORD_PUBLIC_KEY is not an Ed25519 public key; copy the 64 hex digits of \
             \"Public Key\" from the application's General Information page."
                .to_string()
        };
        let bytes: [u8; 32] = hex::decode(public_key_hex.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        Verifier::try_new(bytes).map(Self).map_err(|_| bad())
    }

    /// Verifies one request. `now` is the current Unix time in seconds.
    pub fn verify(
        &self,
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
        // The timestamp is signed as sent, not as parsed.
        self.0
            .verify(signature.trim(), timestamp, body)
            .map_err(|()| VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn keypair() -> (SigningKey, DiscordVerifier) {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = hex::encode(key.verifying_key().to_bytes());
        (key, DiscordVerifier::new(&public).unwrap())
    }

    fn sign(key: &SigningKey, ts: &str, body: &[u8]) -> String {
        hex::encode(key.sign(&[ts.as_bytes(), body].concat()).to_bytes())
    }

    #[test]
    fn a_signature_over_timestamp_and_body_verifies_and_nothing_else_does() {
        let (key, v) = keypair();
        let sig = sign(&key, "1000", b"{}");
        assert_eq!(v.verify(Some("1000"), Some(&sig), b"{}", 1000), Ok(()));
        // The timestamp is part of what is signed, as sent.
        assert_eq!(
            v.verify(Some("01000"), Some(&sig), b"{}", 1000),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            v.verify(Some("1000"), Some(&sig), b"{ }", 1000),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            v.verify(Some("1000"), Some("zz"), b"{}", 1000),
            Err(VerifyError::BadSignature)
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = sign(&other, "1000", b"{}");
        assert_eq!(
            v.verify(Some("1000"), Some(&forged), b"{}", 1000),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn missing_stale_and_malformed_timestamps_are_refused() {
        let (key, v) = keypair();
        let sig = sign(&key, "0", b"");
        assert_eq!(
            v.verify(None, Some(&sig), b"", 0),
            Err(VerifyError::Missing)
        );
        assert_eq!(v.verify(Some("0"), None, b"", 0), Err(VerifyError::Missing));
        assert_eq!(v.verify(Some("0"), Some(&sig), b"", MAX_SKEW_SECS), Ok(()));
        assert_eq!(
            v.verify(Some("0"), Some(&sig), b"", MAX_SKEW_SECS + 1),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            v.verify(Some("soon"), Some(&sig), b"", 0),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn a_key_that_is_not_one_is_a_sentence() {
        assert!(
            DiscordVerifier::new("abc")
                .err()
                .unwrap()
                .contains("DISCORD_PUBLIC_KEY")
        );
    }
}
