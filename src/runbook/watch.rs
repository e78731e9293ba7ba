//! The periodic runbook check `serve` runs every `runbooks.check_interval`: the same checks
//! as `firebreak runbook check`, then each new problem is reported once to
//! `runbooks.report_channel` and/or `report_webhook` through the effects queue (retries and
//! breakers included). The rows in `runbook_findings` make it once: across ticks, replicas
//! and restarts. A problem that clears is reported cleared (if it had been reported), and
//! reported again should it return.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::Runbooks;
use super::check::{Finding, Report, Setup};
use super::probe::Probes;
use crate::effects::NewEffect;
use crate::effects::planner::{Destination, Planners};
use crate::store::Store;

/// Everything a tick needs, built once by `App::with_store`.
pub struct Watch {
    pub runbooks: Runbooks,
    pub setup: Setup,
    pub probes: Probes,
    pub store: Store,
    pub planners: Planners,
    /// `report_channel` and `report_webhook`, where set.
    pub report_to: Vec<Destination>,
    /// Wakes the in-process worker after a tick queued reports.
    pub wake: Arc<Notify>,
}

/// What one tick did.
#[derive(Debug, Default)]
pub struct Tick {
    pub report: Report,
    /// Problems reported by this tick (new ones, or ones that returned).
    pub posted: Vec<Finding>,
    /// Problems this tick found gone.
    pub cleared: Vec<Finding>,
    /// The effects it queued.
    pub effects: Vec<i64>,
}

impl Watch {
    /// Checks every runbook now, live.
    pub async fn check(&self) -> Report {
        super::probe::check(&self.runbooks, &self.setup, Some(&self.probes))
            .await
            .1
    }

    /// Checks, records what was found, and queues a report of what is new or cleared.
    pub async fn tick(&self, now: DateTime<Utc>) -> anyhow::Result<Tick> {
        let report = self.check().await;
        let mut tick = self.record(&report, now).await?;
        tick.report = report;
        Ok(tick)
    }

    /// One transaction: see every finding, claim the unposted ones, clear what is gone
    /// (what could not be checked now neither clears nor posts), queue the reports.
    async fn record(&self, report: &Report, now: DateTime<Utc>) -> anyhow::Result<Tick> {
        let mut tick = Tick::default();
        let mut effects = Vec::new();
        let mut tx = self.store.begin_background().await?;
        // Rows are touched in key order, so two replicas lock them in the same order.
        let mut by_key: Vec<&Finding> = report.findings.iter().collect();
        by_key.sort_by_key(|f| f.key());
        for finding in by_key {
            tx.see_finding(finding, now).await?;
        }
        for finding in &report.findings {
            if let Some(first_seen) = tx.claim_finding_post(&finding.key(), now).await? {
                effects.extend(self.plan(&stale_text(finding), "stale", finding, first_seen));
                tick.posted.push(finding.clone());
            }
        }
        let keep: HashSet<String> = report
            .findings
            .iter()
            .chain(&report.unchecked)
            .map(Finding::key)
            .collect();
        for open in tx.open_findings().await? {
            if keep.contains(&open.key) || !tx.clear_finding(&open.key, now).await? {
                continue;
            }
            if open.posted_at.is_some() {
                let text = cleared_text(&open.finding);
                effects.extend(self.plan(&text, "cleared", &open.finding, open.first_seen));
            }
            tick.cleared.push(open.finding);
        }
        tick.effects = tx.enqueue_effects(&effects).await?;
        tx.commit().await?;
        if !tick.effects.is_empty() {
            self.wake.notify_one();
        }
        Ok(tick)
    }

    /// The report to every destination, keyed by the occurrence (the finding's key and when
    /// it was first seen), so a retried tick queues nothing twice.
    fn plan(
        &self,
        text: &str,
        what: &str,
        finding: &Finding,
        first_seen: DateTime<Utc>,
    ) -> Vec<NewEffect> {
        let key = format!(
            "runbook-finding:{what}:{}:{}",
            finding.key(),
            first_seen.timestamp_millis()
        );
        self.report_to
            .iter()
            .flat_map(|to| self.planners.plan_external(to, text, &key))
            .collect()
    }
}

/// The report of a new problem.
pub fn stale_text(f: &Finding) -> String {
    format!(
        "⚠️ Stale runbook: {} Fix it before the incident that needs it; `firebreak runbook check` lists every problem.",
        f.line()
    )
}

/// The report of a problem that is gone.
pub fn cleared_text(f: &Finding) -> String {
    format!(
        "✅ Runbook problem cleared: {} (reported earlier: {}).",
        f.place(),
        f.problem
    )
}

/// Where reports go: `report_channel`, then `report_webhook`.
pub fn destinations(config: &super::RunbooksConfig) -> Vec<Destination> {
    let channel = config.report_channel.clone().map(Destination::SlackChannel);
    let webhook = config.report_webhook.clone().map(Destination::Webhook);
    channel.into_iter().chain(webhook).collect()
}
