//! Display names: `users.info` into the people cache, for documents and the CLI (chat itself
//! mentions people by id and needs no names).

use chrono::{DateTime, Utc};
use slack_morphism::prelude::*;

use super::types::SlackEffect;
use super::{SlackEffects, db_error};
use crate::effects::NewEffect;
use crate::effects::handler::EffectError;
use crate::incident::identity::Identity;

/// Look up `user`'s display name; queued at most once a day per user (the key).
pub fn lookup(user: &str, now: DateTime<Utc>) -> NewEffect {
    SlackEffect::LookupUser {
        user: user.to_string(),
    }
    .queued(format!(
        "{}:{user}:{}",
        super::types::LOOKUP_USER,
        now.format("%Y-%m-%d")
    ))
}

impl SlackEffects {
    pub(super) async fn lookup_user(&self, user: &str) -> Result<Option<String>, EffectError> {
        let identity = Identity::slack(user)
            .ok_or_else(|| EffectError::permanent(format!("\"{user}\" is not a Slack user id")))?;
        let req = SlackApiUsersInfoRequest::new(SlackUserId::new(user.into()));
        let resp = self
            .api
            .call(
                "users.info",
                None,
                |s| async move { s.users_info(&req).await },
            )
            .await?;
        let Some(name) = display_name(&resp.user) else {
            return Ok(None);
        };
        self.store
            .put_person(&identity, &name, Utc::now())
            .await
            .map_err(db_error)?;
        Ok(None)
    }
}

/// The name Slack shows for a user: the display name they chose, else their full name, else
/// the legacy username.
pub fn display_name(user: &SlackUser) -> Option<String> {
    let profile = user.profile.as_ref();
    [
        profile.and_then(|p| p.display_name.clone()),
        profile.and_then(|p| p.real_name.clone()),
        user.real_name.clone(),
        user.name.clone(),
    ]
    .into_iter()
    .flatten()
    .map(|n| crate::incident::text::display_name(&n))
    .find(|n| !n.is_empty())
}
