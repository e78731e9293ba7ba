//! What a 📌 in an incident channel does: the reactor is checked against `[permissions]`
//! like a note (`respond`), and the pinned message is queued for capture onto the
//! incident's timeline ([`capture_pin`](super::planner::capture_pin)), once per message.
//! The gateway ([`super::gateway`]) decides what is a pin; this is its [`PinSink`].

use async_trait::async_trait;

use super::gateway::{PinReaction, PinSink};
use super::planner::capture_pin;
use super::routes::DiscordEdge;
use crate::incident::{Action, ServiceError};
use crate::store::Delivery;

/// Where the gateway's pins are recorded as handled: one per (message, reactor), so a
/// replayed event neither queues nor refuses twice.
const SOURCE: &str = "discord-pin";

#[async_trait]
impl PinSink for DiscordEdge {
    async fn pinned(&self, pin: PinReaction) {
        match self.pin(&pin).await {
            Ok(()) | Err(ServiceError::Duplicate) => {}
            Err(e) => tracing::error!(
                error = %e,
                channel = %pin.channel_id,
                message = %pin.message_id,
                "queueing a pinned Discord message for the timeline failed"
            ),
        }
    }
}

impl DiscordEdge {
    /// A 📌 in an incident channel, by someone allowed to write to its timeline: queue the
    /// capture. Elsewhere nothing happens; a refusal is recorded on the timeline (by the
    /// service) and logged, since the gateway has no one to answer.
    async fn pin(&self, pin: &PinReaction) -> Result<(), ServiceError> {
        let store = self.service.store();
        let Some(number) = self.read.room_incident("discord", &pin.channel_id).await? else {
            return Ok(());
        };
        let Some(incident) = store.incident_by_number(number).await? else {
            return Ok(());
        };
        let delivery = Delivery::new(SOURCE, delivery_id(pin));
        if store.delivery_seen(&delivery).await? {
            return Ok(());
        }
        let service = self.service.for_delivery(delivery);
        let actor = self.person(&pin.user_id, None, &pin.roles).await;
        let allowed = self
            .service
            .authorize(Action::Respond, &actor, Some(&incident.id), "pin")
            .await;
        if let Err(e) = allowed {
            tracing::info!(
                user = %pin.user_id,
                channel = %pin.channel_id,
                message = %pin.message_id,
                reason = %e.user_message(),
                "a 📌 was refused"
            );
            // Records the delivery alone, so the replay of this refusal is not recorded again.
            return service.enqueue_all(&[]).await.map(drop);
        }
        let effect = capture_pin(
            &incident.id,
            &pin.guild_id,
            &pin.channel_id,
            &pin.message_id,
        );
        service.enqueue(&effect).await.map(drop)
    }
}

/// One (message, reactor) pair.
fn delivery_id(pin: &PinReaction) -> String {
    format!("{}:{}:{}", pin.channel_id, pin.message_id, pin.user_id)
}
