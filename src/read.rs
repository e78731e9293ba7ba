//! The one read model: what the CLI, the HTTP API and chat show about incidents, the merge
//! freeze, the effects queue and the store's health. Edges read through it instead of
//! querying the store themselves, so what a person sees is the same on every surface.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::effects::Effect;
use crate::incident::{Incident, IncidentNumber, Reply, ReplyBody, TimelineEntry};
use crate::people::Names;
use crate::postmortem::view::PostmortemView;
use crate::store::{EffectCounts, FreezeHold, FreezeScope, FreezeTarget, Store};
use crate::telemetry::scrape::Aggregates;

/// An incident with its whole timeline.
#[derive(Debug, Clone)]
pub struct IncidentDetail {
    pub incident: Incident,
    pub timeline: Vec<TimelineEntry>,
}

/// Every freeze scope's wanted state and every target's verified state.
#[derive(Debug, Clone, Serialize)]
pub struct FreezeView {
    pub scopes: Vec<FreezeScope>,
    pub targets: Vec<FreezeTarget>,
    /// Why each scope is frozen: one hold per incident or person.
    pub holds: Vec<FreezeHold>,
}

/// Whether the store can take the writes every command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// It answered, and refused a write (read-only file or database, full disk).
    RefusesWrites,
    /// It did not answer within [`READY_WITHIN`].
    Unreachable,
}

/// How long a readiness probe may take before the answer is "unreachable".
pub const READY_WITHIN: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct ReadModel {
    store: Store,
}

impl ReadModel {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Newest first; with `open_only`, those not yet resolved.
    pub async fn incidents(&self, open_only: bool, limit: i64) -> anyhow::Result<Vec<Incident>> {
        self.store.list_incidents(open_only, limit).await
    }

    pub async fn incident(&self, number: IncidentNumber) -> anyhow::Result<Option<IncidentDetail>> {
        let Some(incident) = self.store.incident_by_number(number).await? else {
            return Ok(None);
        };
        let timeline = self.store.timeline(&incident.id).await?;
        Ok(Some(IncidentDetail { incident, timeline }))
    }

    /// Display names for the people these incidents and timeline entries name.
    pub async fn names(
        &self,
        incidents: &[&Incident],
        timeline: &[TimelineEntry],
    ) -> anyhow::Result<Names> {
        let mut stored: Vec<&str> = Vec::new();
        for i in incidents {
            stored.extend(crate::people::named_in(i, &[], []));
        }
        if let Some(first) = incidents.first() {
            stored.extend(crate::people::named_in(first, timeline, []));
        }
        self.store.names(stored).await
    }

    /// Display names for the people a reply shows.
    pub async fn names_for_reply(&self, reply: &Reply) -> anyhow::Result<Names> {
        match &reply.body {
            ReplyBody::Incident { incident, timeline } => {
                self.names(&[incident.as_ref()], timeline).await
            }
            ReplyBody::List { incidents } => {
                let all: Vec<&Incident> = incidents.iter().collect();
                self.names(&all, &[]).await
            }
            ReplyBody::None | ReplyBody::Freeze { .. } => Ok(Names::default()),
        }
    }

    /// The incident whose room (chat channel) this is, on `platform`.
    pub async fn room_incident(
        &self,
        platform: &str,
        channel: &str,
    ) -> anyhow::Result<Option<IncidentNumber>> {
        self.store.incident_for_channel(platform, channel).await
    }

    /// The freeze; a target being retried without a wait GitHub named shows the pending
    /// reconcile's due time as its next retry.
    pub async fn freeze(&self) -> anyhow::Result<FreezeView> {
        let due = self
            .store
            .next_run_of_kind(crate::github::effect::RECONCILE)
            .await?;
        let targets = self.store.freeze_targets().await?;
        Ok(FreezeView {
            scopes: self.store.freeze_scopes().await?,
            targets: crate::incident::freeze_view::with_scheduled_retry(targets, due),
            holds: self.store.freeze_holds().await?,
        })
    }

    /// The audit log: at most `limit` entries outside any incident, newest first (none for
    /// a limit of 0 or less).
    pub async fn audit(&self, limit: i64) -> anyhow::Result<Vec<TimelineEntry>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        self.store.audit_log(limit).await
    }

    pub async fn queue(&self, now: DateTime<Utc>) -> anyhow::Result<EffectCounts> {
        self.store.effect_counts(now).await
    }

    /// What `/metrics` shows from the store: aggregate counts only (one `GROUP BY` or
    /// `COUNT` each), never the rows themselves.
    pub async fn metric_counts(&self, now: DateTime<Utc>) -> anyhow::Result<Aggregates> {
        Ok(Aggregates {
            open: self.store.open_incident_counts().await?,
            freeze: self.store.freeze_target_counts().await?,
            queue: self.store.effect_counts(now).await?,
        })
    }

    /// Effects newest first; with `failed_only`, just the ones that gave up.
    pub async fn effects(&self, failed_only: bool, limit: i64) -> anyhow::Result<Vec<Effect>> {
        self.store.list_effects(failed_only, limit).await
    }

    /// Effects still pending, running or failed, newest first (the effects page).
    pub async fn unfinished_effects(&self, limit: i64) -> anyhow::Result<Vec<Effect>> {
        self.store.unfinished_effects(limit).await
    }

    pub async fn postmortem(
        &self,
        number: IncidentNumber,
    ) -> anyhow::Result<Option<PostmortemView>> {
        crate::postmortem::load(&self.store, number).await
    }

    /// Incident `number`'s drill report, or why there is none.
    pub async fn drill_report(
        &self,
        number: IncidentNumber,
    ) -> anyhow::Result<crate::runbook::report::Lookup> {
        crate::runbook::report::load(&self.store, number).await
    }

    /// Probes the store with a write that is rolled back, within [`READY_WITHIN`]. Failures
    /// are logged with their cause; the answer says only which kind.
    pub async fn readiness(&self) -> Readiness {
        match tokio::time::timeout(READY_WITHIN, self.store.probe_write()).await {
            Ok(Ok(())) => Readiness::Ready,
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "readiness check: the database refused a write");
                Readiness::RefusesWrites
            }
            Err(_) => {
                tracing::error!("readiness check: the database did not answer within 1 s");
                Readiness::Unreachable
            }
        }
    }
}
