//! Times in JSON: RFC 3339 in UTC with exactly three fractional digits
//! (`2026-12-01T01:02:03.456Z`), the store's precision, on every surface.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `2026-12-01T01:02:03.456Z`: milliseconds always shown, anything finer dropped.
pub fn text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// For `#[serde(serialize_with = "…::millis")]`.
pub fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&text(t))
}

/// [`millis`] for an optional time (`null` when absent).
pub fn millis_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => millis(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn always_three_digits() {
        let whole = Utc.with_ymd_and_hms(2026, 12, 1, 1, 2, 3).unwrap();
        assert_eq!(text(&whole), "2026-12-01T01:02:03.000Z");
        let fine = whole + chrono::Duration::nanoseconds(456_789_123);
        assert_eq!(text(&fine), "2026-12-01T01:02:03.456Z");
    }
}
