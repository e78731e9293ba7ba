//! The live timeline: `GET /incidents/{number}/events`, a server-sent event stream of the
//! incident's new timeline entries, and `GET /assets/live.js`, the small script that appends
//! them to the open page.
//!
//! Each entry is one event: name `entry`, id the entry's id, data the entry's `<li>`
//! rendered by the same template as the page (`pages/entry.html`, text escaped). Entries
//! are committed by any process on the database (`serve`, or a `firebreak` command beside
//! it), so each stream polls the store every [`POLL_EVERY`]: entries with an id above what
//! it has read, by the primary key's range (cheap however long the timelines are). The
//! stream starts after `Last-Event-ID` when the browser reconnects, else after `?after=`
//! (the last entry the page shows), else at the newest entry. So nothing is missed or sent
//! twice across a reconnect.
//!
//! Ids are given out when an entry is written, not when it commits, so an entry can become
//! visible after one with a higher id (two writers at once). Each poll reads again the last
//! [`LOOKBACK_IDS`] ids it had read and sends what it had not, which covers the short
//! overlap of concurrent writes; the script also ignores an entry already on the page.
//! Comments keep the connection alive; the stream ends when the client goes away (its
//! next write fails) or the server shuts down.
//!
//! The credential the stream was opened with is checked again every [`CHECK_EVERY`] and
//! before any entries are sent: once its token is revoked, its session signed out or
//! expired, the stream sends `signed-out` (the script then goes to the sign-in page) and
//! ends, so nothing written after that reaches it.

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::incident::{EntryItem, Line};
use super::{PagesState, internal, plain};
use crate::http::guard::Credential;
use crate::incident::{Incident, IncidentNumber, TimelineEntry};

/// How often a stream checks its credential still lets it in (besides before each send).
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// How often a stream looks for new entries.
pub const POLL_EVERY: Duration = Duration::from_millis(300);

/// How many ids below the highest read each poll reads again (see the module docs).
const LOOKBACK_IDS: i64 = 64;

/// The most entries one poll reads.
const BATCH: i64 = 500;

/// How often a comment is sent when there is nothing else.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How soon the browser reconnects after the stream ends (the SSE `retry` field).
const RETRY: Duration = Duration::from_secs(1);

const SCRIPT: &str = include_str!("../../../templates/pages/live.js");

/// `GET /assets/live.js`.
pub(super) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

#[derive(Deserialize, Default)]
pub(super) struct LiveQuery {
    after: Option<i64>,
}

/// `GET /incidents/{number}/events`.
pub(super) async fn events(
    State(pages): State<PagesState>,
    Path(number): Path<String>,
    Query(q): Query<LiveQuery>,
    credential: Option<Extension<Credential>>,
    headers: HeaderMap,
) -> Response {
    let Some(n) = IncidentNumber::parse(&number, true) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("\"{number}\" is not an incident number like INC-42."),
        );
    };
    let incident = match pages.store.incident_by_number(n).await {
        Ok(Some(i)) => i,
        Ok(None) => return plain(StatusCode::NOT_FOUND, format!("There is no incident {n}.")),
        Err(e) => return internal("opening a live timeline", e),
    };
    let start = match last_event_id(&headers).or(q.after) {
        Some(id) => id,
        None => match pages.store.last_timeline_id().await {
            Ok(id) => id,
            Err(e) => return internal("starting a live timeline", e),
        },
    };
    let live = Live {
        cursor: Cursor::new(start),
        pages,
        incident,
        pending: VecDeque::from([Event::default().retry(RETRY)]),
        credential: credential.map(|Extension(c)| c),
        checked_at: Instant::now(),
        ended: false,
    };
    Sse::new(futures::stream::unfold(live, Live::next))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// The `Last-Event-ID` a reconnecting browser sends, if it is an entry id.
fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Where a stream is in the timeline: what it has read, and what it has sent lately.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    /// Nothing at or below this is sent (where the client said it was).
    start: i64,
    /// The highest id read.
    read: i64,
    /// Ids sent that the next read can see again.
    sent: BTreeSet<i64>,
}

impl Cursor {
    fn new(start: i64) -> Self {
        Self {
            start,
            read: start,
            sent: BTreeSet::new(),
        }
    }

    /// The id the next read starts after.
    fn read_from(&self) -> i64 {
        (self.read - LOOKBACK_IDS).max(self.start)
    }

    /// From `entries` (read after [`Cursor::read_from`], in id order), those of `incident`
    /// not sent yet, noting them as sent.
    fn take(&mut self, entries: Vec<TimelineEntry>, incident: &Incident) -> Vec<TimelineEntry> {
        let mut new = Vec::new();
        for e in entries {
            self.read = self.read.max(e.id);
            let ours = e.incident_id.as_ref() == Some(&incident.id);
            if ours && e.id > self.start && self.sent.insert(e.id) {
                new.push(e);
            }
        }
        let from = self.read_from();
        self.sent.retain(|id| *id > from);
        new
    }
}

/// One open stream (dropped when the client goes away: its next write fails).
struct Live {
    pages: PagesState,
    incident: Incident,
    cursor: Cursor,
    /// Events made, not yet sent.
    pending: VecDeque<Event>,
    /// What the stream was opened with (the guard puts it on every request it lets in).
    credential: Option<Credential>,
    /// When the credential was last checked against the store.
    checked_at: Instant,
    /// The credential no longer holds: `signed-out` is queued, nothing more is read.
    ended: bool,
}

impl Live {
    /// The next event, waiting for one; `None` ends the stream (the server is stopping).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.ended {
                return None;
            }
            if self.checked_at.elapsed() >= CHECK_EVERY || self.expired() {
                self.check().await;
                continue;
            }
            let full = match self.poll().await {
                Ok(full) => full,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), incident = %self.incident.number, "reading new timeline entries failed; trying again");
                    false
                }
            };
            if full || !self.pending.is_empty() {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = self.pages.shutdown.cancelled() => return None,
            }
        }
    }

    /// Reads new entries and makes their events; `true` when the read was full (there may
    /// be more at once).
    async fn poll(&mut self) -> anyhow::Result<bool> {
        let entries = self
            .pages
            .store
            .timeline_after(self.cursor.read_from(), BATCH)
            .await?;
        let full = entries.len() as i64 == BATCH;
        let new = self.cursor.take(entries, &self.incident);
        if new.is_empty() {
            return Ok(full);
        }
        if !self.check().await {
            return Ok(false);
        }
        let names = self.pages.read.names(&[&self.incident], &new).await?;
        for entry in new {
            let id = entry.id.to_string();
            let item = EntryItem {
                l: Line::of(entry, self.incident.declared_at, &names),
            };
            self.pending
                .push_back(Event::default().event("entry").id(id).data(item.render()?));
        }
        Ok(full)
    }
}

impl Live {
    /// Whether the session the stream was opened with has expired (no store needed).
    fn expired(&self) -> bool {
        let expires = self.credential.as_ref().and_then(Credential::expires);
        expires.is_some_and(|at| Utc::now() >= at)
    }

    /// Checks the credential against the store; when it no longer holds, queues
    /// `signed-out` and marks the stream ended. `true` while it holds. A failed check is
    /// logged and counts as holding (the next poll fails the same way and sends nothing).
    async fn check(&mut self) -> bool {
        self.checked_at = Instant::now();
        let Some(credential) = &self.credential else {
            return true;
        };
        let holds = match credential.still_valid(&self.pages.store, Utc::now()).await {
            Ok(holds) => holds,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "checking a live timeline's credential failed");
                true
            }
        };
        if !holds {
            tracing::info!(incident = %self.incident.number, "a live timeline's credential ended; closing it");
            self.pending.clear();
            self.pending.push_back(
                Event::default()
                    .event("signed-out")
                    .data("Your session has ended; sign in again."),
            );
            self.ended = true;
        }
        holds
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        tracing::debug!(incident = %self.incident.number, read = self.cursor.read, "a live timeline closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::timeline::{EntryKind, Source};
    use crate::incident::{IncidentId, Severity, Status};
    use chrono::Utc;

    fn incident(id: &str) -> Incident {
        let now = Utc::now();
        Incident {
            id: IncidentId(id.into()),
            number: IncidentNumber(1),
            title: "t".into(),
            severity: Severity::Sev2,
            status: Status::Investigating,
            drill: false,
            started_at: None,
            detected_at: None,
            declared_at: now,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            commander: None,
            comms: None,
            scribe: None,
            summary: None,
            last_update_at: None,
            next_update_due: None,
            reminded_due: None,
            declared_by: "cli:x".into(),
            version: 1,
        }
    }

    fn entry(id: i64, incident: &str) -> TimelineEntry {
        TimelineEntry {
            id,
            incident_id: Some(IncidentId(incident.into())),
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
            actor: "cli:x".into(),
            source: Source::Cli,
            kind: EntryKind::Note,
            text: format!("entry {id}"),
        }
    }

    fn ids(entries: &[TimelineEntry]) -> Vec<i64> {
        entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn a_cursor_sends_each_entry_of_its_incident_once_and_nothing_before_its_start() {
        let ours = incident("a");
        let mut c = Cursor::new(10);
        assert_eq!(c.read_from(), 10);
        let got = c.take(vec![entry(11, "a"), entry(12, "b"), entry(14, "a")], &ours);
        assert_eq!(ids(&got), [11, 14]);
        assert_eq!(c.read, 14);
        // 13 commits late: read again within the lookback, sent once; 11 and 14 not again.
        assert_eq!(c.read_from(), 10);
        let got = c.take(
            vec![
                entry(11, "a"),
                entry(12, "b"),
                entry(13, "a"),
                entry(14, "a"),
            ],
            &ours,
        );
        assert_eq!(ids(&got), [13]);
        // Far along, the lookback is bounded and what fell out of it is forgotten.
        let got = c.take(vec![entry(200, "b")], &ours);
        assert!(got.is_empty());
        assert_eq!(c.read_from(), 200 - LOOKBACK_IDS);
        assert!(c.sent.is_empty());
        // An entry at or below the start is never sent.
        let mut c = Cursor::new(10);
        assert!(
            c.take(vec![entry(9, "a"), entry(10, "a")], &ours)
                .is_empty()
        );
    }

    #[test]
    fn last_event_id_is_a_number_or_nothing() {
        let mut h = HeaderMap::new();
        assert_eq!(last_event_id(&h), None);
        h.insert("last-event-id", " 42".parse().unwrap());
        assert_eq!(last_event_id(&h), Some(42));
        h.insert("last-event-id", "x".parse().unwrap());
        assert_eq!(last_event_id(&h), None);
    }
}
