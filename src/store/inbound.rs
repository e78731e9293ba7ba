//! `inbound_seen`: deliveries already handled (a Slack `event_id`, an `X-GitHub-Delivery`,
//! the digest of a slash command's body), so a platform's retry is not applied twice. The
//! row is written in the same transaction as whatever the delivery causes, so a crash
//! between the two can neither lose the event nor apply it twice.
//!
//! A delivery may also keep the answer it was given ([`Store::save_delivery_reply`]), so a
//! retry that arrives after it was applied gets that same answer.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Store, Tx, from_ms, to_ms};
use crate::incident::IncidentId;

/// One inbound delivery: where it came from and the platform's id for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub source: &'static str,
    pub id: String,
    /// How long it counts as seen: `None` for ids the platform never reuses (event ids);
    /// a window for ids built from content (the same slash command typed again next hour
    /// is a new command, a retry within minutes is not).
    pub window: Option<Duration>,
    /// The digest of the request that carried it, when the id is the caller's (an API
    /// `Idempotency-Key`): the same id with another request is not a retry.
    pub request: Option<String>,
}

impl Delivery {
    /// A delivery whose id the platform never reuses.
    pub fn new(source: &'static str, id: impl Into<String>) -> Self {
        Self {
            source,
            id: id.into(),
            window: None,
            request: None,
        }
    }

    /// A delivery identified by its content, seen for `window`.
    pub fn within(source: &'static str, id: impl Into<String>, window: Duration) -> Self {
        Self {
            source,
            id: id.into(),
            window: Some(window),
            request: None,
        }
    }

    /// The same delivery, carrying the digest of its request (see [`Delivery::request`]).
    pub fn with_request(mut self, digest: impl Into<String>) -> Self {
        self.request = Some(digest.into());
        self
    }

    /// Rows received before this are no longer "seen" (the epoch for no window).
    fn cutoff_ms(&self) -> i64 {
        match self.window {
            Some(w) => to_ms(Utc::now()) - i64::try_from(w.as_millis()).unwrap_or(i64::MAX),
            None => i64::MIN,
        }
    }
}

impl Tx {
    /// Records `delivery` in this transaction; `false` if it was recorded before (a retry).
    /// A record older than the delivery's window is replaced, and this one counts as new.
    pub async fn record_delivery(&mut self, delivery: &Delivery) -> anyhow::Result<bool> {
        self.record_delivery_of(delivery, None).await
    }

    /// [`record_delivery`](Self::record_delivery) for a delivery that declares `incident`
    /// (its id is made before the transaction), so a retry finds what it declared.
    pub async fn record_delivery_of(
        &mut self,
        delivery: &Delivery,
        incident: Option<&IncidentId>,
    ) -> anyhow::Result<bool> {
        let done = record_query(delivery, incident);
        Ok(self.execute(done).await?.rows_affected() == 1)
    }
}

/// The upsert that records `delivery`: it changes one row when the delivery is new (or its
/// record is older than its window), none when it is a retry.
pub(super) fn record_query<'q>(
    delivery: &'q Delivery,
    incident: Option<&'q IncidentId>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO inbound_seen (source, id, received_at, request_hash, incident_id) \
         VALUES ($1, $2, $3, $5, $6) \
         ON CONFLICT (source, id) DO UPDATE SET received_at = excluded.received_at, reply = NULL, \
         request_hash = excluded.request_hash, incident_id = excluded.incident_id \
         WHERE inbound_seen.received_at < $4",
    )
    .bind(delivery.source)
    .bind(&delivery.id)
    .bind(to_ms(Utc::now()))
    .bind(delivery.cutoff_ms())
    .bind(delivery.request.as_deref())
    .bind(incident.map(|i| i.0.as_str()))
}

/// Everything kept about a delivery seen before (within its window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The digest of the request it came with ([`Delivery::request`]).
    pub request: Option<String>,
    /// The answer it was given, once kept.
    pub reply: Option<String>,
    /// The incident it declared, if it declared one.
    pub incident: Option<IncidentId>,
    /// When it was recorded (in the transaction of the change it carried).
    pub received_at: DateTime<Utc>,
}

/// An `inbound_seen` row: request hash, reply, incident id, when it was received.
type RecordRow = (Option<String>, Option<String>, Option<String>, i64);

/// What is known about a delivery seen before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not seen (within its window).
    No,
    /// Seen; its answer is not recorded (yet).
    Yes,
    /// Seen, and answered with this.
    Answered(String),
}

impl Store {
    /// Whether `delivery` was handled before (within its window).
    pub async fn delivery_seen(&self, delivery: &Delivery) -> anyhow::Result<bool> {
        Ok(self.delivery_reply(delivery).await? != Seen::No)
    }

    /// Whether `delivery` was handled before (within its window), and its answer if kept.
    pub async fn delivery_reply(&self, delivery: &Delivery) -> anyhow::Result<Seen> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT reply FROM inbound_seen WHERE source = $1 AND id = $2 AND received_at >= $3",
        )
        .bind(delivery.source)
        .bind(&delivery.id)
        .bind(delivery.cutoff_ms())
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(match row {
            None => Seen::No,
            Some((None,)) => Seen::Yes,
            Some((Some(reply),)) => Seen::Answered(reply),
        })
    }

    /// What is kept about `delivery`, if it was handled before (within its window).
    pub async fn delivery_record(
        &self,
        delivery: &Delivery,
    ) -> anyhow::Result<Option<DeliveryRecord>> {
        let row: Option<RecordRow> = sqlx::query_as(
            "SELECT request_hash, reply, incident_id, received_at FROM inbound_seen \
             WHERE source = $1 AND id = $2 AND received_at >= $3",
        )
        .bind(delivery.source)
        .bind(&delivery.id)
        .bind(delivery.cutoff_ms())
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(
            row.map(|(request, reply, incident, received)| DeliveryRecord {
                request,
                reply,
                incident: incident.map(IncidentId),
                received_at: from_ms(received),
            }),
        )
    }

    /// Keeps the answer `delivery` was given, recording the delivery too if what it asked
    /// wrote nothing (a query, a refusal), so a retry gets the same answer. The first answer
    /// kept is the one that stays.
    pub async fn save_delivery_reply(
        &self,
        delivery: &Delivery,
        reply: &str,
    ) -> anyhow::Result<()> {
        // Bookkeeping, not a command: batched with the worker's outcomes, behind commands
        // and without their fsync (a power cut losing it turns a retry's replayed answer
        // into "already handled").
        self.write_outcome(super::outcomes::Outcome::KeepReply {
            source: delivery.source,
            id: delivery.id.clone(),
            reply: reply.to_string(),
        })
        .await
        .map(|_| ())
    }
}
