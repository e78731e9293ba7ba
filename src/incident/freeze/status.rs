//! `freeze status`: every scope's wanted and actual state, what GitHub last answered for each
//! target and when a failing one is tried next, and who holds each frozen scope.

use super::{FreezeSettings, and_list};
use crate::incident::error::ServiceError;
use crate::incident::reply::{Reply, ReplyBody};
use crate::incident::service::{IncidentService, Outcome};
use crate::store::FreezeHold;

impl IncidentService {
    /// The freeze status, as a private reply with the full picture in its body.
    pub(super) async fn freeze_status(
        &self,
        settings: &FreezeSettings,
    ) -> Result<Outcome, ServiceError> {
        let scopes = self.store().freeze_scopes().await?;
        let due = self
            .store()
            .next_run_of_kind(settings.planner.reconcile_kind())
            .await?;
        let targets = crate::incident::freeze_view::with_scheduled_retry(
            self.store().freeze_targets().await?,
            due,
        );
        let holds = self.store().freeze_holds().await?;
        // The summary line and the per-target wording live with the reconciler that
        // records them; the holds are the core's.
        let mut text = crate::incident::freeze_view::status_summary(&scopes, &targets);
        let held: Vec<String> = scopes
            .iter()
            .map(|s| s.scope.clone())
            .filter(|s| holds.iter().any(|h| &h.scope == s))
            .collect();
        if !held.is_empty() {
            let per_scope: Vec<String> = held
                .iter()
                .map(|scope| {
                    let labels: Vec<String> = holds
                        .iter()
                        .filter(|h| &h.scope == scope)
                        .map(FreezeHold::label)
                        .collect();
                    format!("{scope} is held by {}", and_list(&labels))
                })
                .collect();
            text.push_str(&format!(" {}.", per_scope.join("; ")));
        }
        Ok(Outcome {
            reply: Reply::private(text).with_body(ReplyBody::Freeze {
                scopes,
                targets,
                holds,
            }),
            effects: Vec::new(),
        })
    }
}
