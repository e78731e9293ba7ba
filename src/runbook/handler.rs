//! The `runbook.due` effect: queued by a declaration for each time one of its runbook's
//! steps is due, it wakes the runbook sweep then, so a step fires at its target rather than
//! at the next periodic sweep. The sweep itself decides what is due, from the rows.

use async_trait::async_trait;

use crate::effects::Effect;
use crate::effects::handler::{EffectError, EffectHandler};
use crate::incident::IncidentService;
use crate::incident::runbook::DUE_EFFECT;

/// Runs the sweep; one internal target (no outside call is made here, the steps' own
/// effects carry their targets).
pub struct RunbookEffects {
    pub service: IncidentService,
}

#[async_trait]
impl EffectHandler for RunbookEffects {
    fn kinds(&self) -> &'static [&'static str] {
        &[DUE_EFFECT]
    }

    fn target(&self, _effect: &Effect) -> String {
        "runbook".into()
    }

    async fn run(&self, _effect: &Effect) -> Result<Option<String>, EffectError> {
        match self.service.run_runbooks().await {
            Ok(_) => Ok(None),
            Err(e) => Err(EffectError::retryable(format!(
                "running due runbook steps: {e}"
            ))),
        }
    }
}
