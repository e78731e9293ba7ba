//! `alert_groups`: each Alertmanager alert group (`groupKey`) and the incident it opened,
//! with what was last acted on (status and the firing fingerprints). Every change is a
//! compare-and-set on `version`, so two deliveries of one group racing each other (an HA
//! pair of Alertmanagers, a retry) move it once.

use chrono::Utc;

use super::{Store, to_ms};
use crate::incident::IncidentId;

/// One alert group as remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertGroup {
    pub group_key: String,
    pub incident: IncidentId,
    /// `firing` or `resolved`: the status last acted on.
    pub status: String,
    /// The fingerprints of the alerts firing then, sorted, comma-separated.
    pub fingerprints: String,
    pub version: i64,
}

impl Store {
    pub async fn alert_group(&self, group_key: &str) -> anyhow::Result<Option<AlertGroup>> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT incident_id, status, fingerprints, version FROM alert_groups WHERE group_key = $1",
        )
        .bind(group_key)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(
            row.map(|(incident, status, fingerprints, version)| AlertGroup {
                group_key: group_key.to_string(),
                incident: IncidentId(incident),
                status,
                fingerprints,
                version,
            }),
        )
    }

    /// Points the group at `incident` with what was acted on, if it is still at `seen`
    /// (`None`: not remembered yet). `false` when another delivery moved it first.
    pub async fn move_alert_group(
        &self,
        group_key: &str,
        seen: Option<i64>,
        incident: &IncidentId,
        status: &str,
        fingerprints: &str,
    ) -> anyhow::Result<bool> {
        let now = to_ms(Utc::now());
        let mut tx = self.begin().await?;
        let sql = match seen {
            None => {
                "INSERT INTO alert_groups (group_key, incident_id, status, fingerprints, version, updated_at) \
                 VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (group_key) DO NOTHING"
            }
            Some(_) => {
                "UPDATE alert_groups SET incident_id = $2, status = $3, fingerprints = $4, \
                 version = version + 1, updated_at = $5 WHERE group_key = $1 AND version = $6"
            }
        };
        let mut query = sqlx::query(sql)
            .bind(group_key)
            .bind(&incident.0)
            .bind(status)
            .bind(fingerprints)
            .bind(now);
        if let Some(version) = seen {
            query = query.bind(version);
        }
        let done = tx.execute(query).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
