//! Holds with an expiry end by themselves: a periodic sweep in `serve` (and `freeze status`
//! before it answers) ends each one past its time, re-checked under the write.

use super::release;
use crate::incident::error::ServiceError;
use crate::incident::permissions::Actor;
use crate::incident::service::IncidentService;
use crate::store::FreezeHold;

impl IncidentService {
    /// Ends every hold whose expiry has passed, says so on the timeline (the incident's, or
    /// the audit log for a person's hold), and queues the reconcile. Run periodically;
    /// returns how many holds ended.
    pub async fn expire_holds(&self) -> Result<usize, ServiceError> {
        let Some(settings) = self.policy().freeze.clone() else {
            return Ok(0);
        };
        let now = self.now();
        let due: Vec<FreezeHold> = self
            .store()
            .freeze_holds()
            .await?
            .into_iter()
            .filter(|h| h.expires_at.is_some_and(|t| t <= now))
            .collect();
        let mut ended = 0;
        let mut effects = Vec::new();
        for hold in due {
            let incident = match &hold.incident_id {
                Some(id) => self.store().incident_by_id(id).await?,
                None => None,
            };
            let mut tx = self.begin().await?;
            // Re-checked under the write (the generation counter's lock, taken by a no-op
            // bump): another replica, or a renewal, may have won.
            tx.next_freeze_generation().await?;
            let still_due = tx.freeze_holds().await?.into_iter().any(|h| {
                h.scope == hold.scope
                    && h.holder_key == hold.holder_key
                    && h.expires_at.is_some_and(|t| t <= now)
            });
            if !still_due {
                tx.rollback().await?;
                continue;
            }
            let until = hold
                .expires_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            let whose = format!("{}'s hold", hold.holder_name);
            let what = hold
                .reason
                .as_deref()
                .map(|r| format!("{r}; "))
                .unwrap_or_default();
            let released = release(
                &mut tx,
                std::slice::from_ref(&hold.scope),
                Some(&hold.holder_key),
                &whose,
                &format!(" ({what}it expired at {until})"),
                incident.as_ref(),
                &Actor::system(),
                now,
            )
            .await?;
            if let Some(g) = released.generation {
                let id = tx
                    .enqueue_effect(&settings.reconcile(g, incident.as_ref()))
                    .await?;
                effects.push(id);
                ended += 1;
            }
            tx.commit().await?;
        }
        self.wake_worker(&effects);
        Ok(ended)
    }
}
