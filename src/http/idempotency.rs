//! `Idempotency-Key` on the machine routes. A key is an inbound delivery (source `api`, id
//! `<token name>:<key>`), recorded in the same transaction as the change it carries, with the
//! digest of the request; the answer is kept once the change is made. So the same key with
//! the same request gets the first answer again and changes nothing; with another request,
//! a 422. A JSON body is compared by its content, not its bytes: key order and whitespace
//! do not matter. Two requests racing with one key meet at the database's unique key: one applies,
//! the other waits for its answer. Keys count for [`KEY_WINDOW`]; only requests that
//! changed something are remembered, so a refused request can be retried with its key.
//!
//! A key whose change is committed but whose answer is not kept is either being answered
//! right now (the answer is kept just after the commit) or lost (the process died between
//! the two). Once the key's row is older than [`ANSWER_GRACE`] it is lost: the retry is
//! answered at once with the incident as it is now (the one a declaration declared, which
//! the row names; the one in the path for a change), marked `Idempotent-Replayed: true` and
//! `Idempotent-Answer-Lost: true`, and that answer is kept for later retries.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::api::internal;
use super::refusal::Refusal;
use crate::incident::IncidentId;
use crate::store::{Delivery, DeliveryRecord, Store};

/// How long a key is remembered (the usual 24 hours of payment APIs).
pub const KEY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How long a request waits for the answer of another one with its key that is still
/// being handled, before answering without it.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(5);

/// How long after its key was recorded a missing answer may still be on its way. The key is
/// recorded in the change's transaction and the answer kept just after the commit, so an
/// older key without an answer lost it (the process died in between).
pub const ANSWER_GRACE: Duration = Duration::from_secs(5);

const HEADER: &str = "idempotency-key";

/// Marks an answer given again for a key (the change was not made again).
pub const REPLAYED: &str = "idempotent-replayed";

/// Marks an answer given for a key whose first answer was lost: the incident as it is now,
/// not as the first answer showed it.
pub const ANSWER_LOST: &str = "idempotent-answer-lost";

/// The key, as a delivery carrying the request's digest; `None` without the header; the
/// 400 to answer for a key that is empty, too long or not printable ASCII.
pub fn delivery(
    headers: &HeaderMap,
    caller: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Option<Delivery>, Refusal> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()));
    let Some(key) = key else {
        return Err(Refusal::bad_request(
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces, such as a UUID.",
        ));
    };
    let body = canonical(body);
    let mut h = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), &body] {
        h.update(part);
        h.update([0]);
    }
    let id = format!("{caller}:{key}");
    Ok(Some(
        Delivery::within("api", id, KEY_WINDOW).with_request(hex::encode(h.finalize())),
    ))
}

/// The body as compared between requests with one key: JSON re-written with its object
/// keys sorted and no whitespace (so key order and spacing do not make another request),
/// an empty body as `{}`, anything else as it is.
fn canonical(body: &[u8]) -> Vec<u8> {
    if body.trim_ascii().is_empty() {
        return b"{}".to_vec();
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok())
        .unwrap_or_else(|| body.to_vec())
}

/// An answer as kept for its key.
#[derive(Serialize, Deserialize)]
struct Kept {
    status: u16,
    body: serde_json::Value,
    /// Made after the first answer was lost (see [`ANSWER_LOST`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    lost: bool,
}

/// Keeps `status` and `body` as the answer for `delivery`; `lost` when it stands in for a
/// first answer that was lost.
pub async fn keep(
    store: &Store,
    delivery: &Delivery,
    status: StatusCode,
    body: &serde_json::Value,
    lost: bool,
) {
    let kept = Kept {
        status: status.as_u16(),
        body: body.clone(),
        lost,
    };
    let text = serde_json::to_string(&kept).unwrap_or_default();
    if let Err(e) = store.save_delivery_reply(delivery, &text).await {
        tracing::error!(error = %format!("{e:#}"), "keeping an idempotent answer failed; a retry with its key gets 409");
    }
}

/// What is known about a key when a request comes with it.
pub enum Replay {
    /// Not seen (within the window): go ahead.
    NotSeen,
    /// The answer to give: the first answer again, or 422 for another request.
    Answer(Response),
    /// Applied, but its answer was lost (see [`ANSWER_GRACE`]). The incident it declared,
    /// if it declared one, can still be shown.
    Lost(Option<IncidentId>),
}

/// Whether a key recorded at `received_at` and still without an answer at `now` lost it.
pub fn answer_lost(received_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now.signed_duration_since(received_at)
        .to_std()
        .is_ok_and(|age| age >= ANSWER_GRACE)
}

/// For a key seen before: its first answer again, 422 for another request, or (waiting up
/// to [`WAIT_FOR_FIRST`] for an answer that may still come) that its answer was lost.
pub async fn replay(store: &Store, delivery: &Delivery) -> Replay {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        let record = match store.delivery_record(delivery).await {
            Ok(Some(r)) => r,
            Ok(None) => return Replay::NotSeen,
            Err(e) => return Replay::Answer(internal("reading an idempotency key", e)),
        };
        if record.request != delivery.request {
            return Replay::Answer(mismatch());
        }
        if let Some(answer) = kept_answer(&record) {
            return Replay::Answer(answer);
        }
        if answer_lost(record.received_at, Utc::now()) || tokio::time::Instant::now() >= deadline {
            return Replay::Lost(record.incident);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Marks `response` as given again for its key.
pub fn replayed(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Marks `response` as standing in for a first answer that was lost.
pub fn lost(response: Response) -> Response {
    let mut response = replayed(response);
    response
        .headers_mut()
        .insert(ANSWER_LOST, HeaderValue::from_static("true"));
    response
}

fn kept_answer(record: &DeliveryRecord) -> Option<Response> {
    let kept: Kept = serde_json::from_str(record.reply.as_deref()?).ok()?;
    let status = StatusCode::from_u16(kept.status).ok()?;
    let answer = (status, Json(kept.body)).into_response();
    Some(if kept.lost {
        lost(answer)
    } else {
        replayed(answer)
    })
}

fn mismatch() -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "error": "This Idempotency-Key was already used with a different request; use a new key for a new request." })),
    )
        .into_response()
}

pub fn still_running() -> Response {
    (
        StatusCode::CONFLICT,
        Json(json!({ "error": "A request with this Idempotency-Key is still being handled; retry in a moment." })),
    )
        .into_response()
}
