//! The runbook checklist in the incident channel: one message, posted the first time and
//! edited in place afterwards, rendered from the database when it runs (so a late edit
//! never shows an older state), with a Done button on each open manual step.

use crate::chat::records::ChatRecords;

use slack_morphism::prelude::*;

use super::{SlackEffects, db_error, render_error};
use crate::chat::slack::checklist;
use crate::effects::handler::EffectError;
use crate::incident::model::IncidentId;

/// `chat_refs` role of the checklist message.
const ROLE: &str = "runbook-checklist";

impl SlackEffects {
    pub(super) async fn checklist(&self, id: &IncidentId) -> Result<Option<String>, EffectError> {
        let Some(runbook) = self.store.runbook(id).await.map_err(db_error)? else {
            return Ok(None);
        };
        let incident = self.incident(id).await?;
        let refs = self.refs(id).await?;
        let channel = refs.channel().ok_or_else(|| {
            EffectError::permanent("the incident has no Slack channel for its runbook checklist")
        })?;
        let (text, blocks) =
            checklist::blocks(&incident, &runbook, chrono::Utc::now()).map_err(render_error)?;
        let content = SlackMessageContent::new()
            .with_text(text)
            .with_blocks(blocks);
        match refs.message(ROLE, &channel) {
            Some(ts) => self.update_message(&channel, ts, content).await?,
            None => {
                let ts = self.post(&channel, content, None).await?;
                self.put_ref(id, ROLE, &channel, Some(&ts)).await?;
            }
        }
        Ok(None)
    }
}
