//! Counts for `/metrics`: one `GROUP BY` each, so a scrape costs the same with ten incidents
//! or ten thousand, and never loads a row it does not count.

use super::Store;

/// Incidents not yet resolved, with one severity and drill flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncidentCount {
    /// `SEV1` … `SEV4`, as stored.
    pub severity: String,
    pub drill: bool,
    pub count: i64,
}

/// Freeze targets whose last-read state on GitHub is `state` (`active`, `error`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeTargetCount {
    pub state: String,
    pub count: i64,
}

impl Store {
    /// Open incidents counted by severity and drill flag; absent groups have no row.
    pub async fn open_incident_counts(&self) -> anyhow::Result<Vec<OpenIncidentCount>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT severity, drill, CAST(COUNT(*) AS BIGINT) FROM incidents \
             WHERE status <> 'resolved' GROUP BY severity, drill ORDER BY severity, drill",
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(severity, drill, count)| OpenIncidentCount {
                severity,
                drill: drill != 0,
                count,
            })
            .collect())
    }

    /// Freeze targets counted by their verified state (`freeze_targets.actual`).
    pub async fn freeze_target_counts(&self) -> anyhow::Result<Vec<FreezeTargetCount>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT actual, CAST(COUNT(*) AS BIGINT) FROM freeze_targets \
             GROUP BY actual ORDER BY actual",
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(state, count)| FreezeTargetCount { state, count })
            .collect())
    }
}
