//! Freeze holds: the reasons a scope is frozen (an incident's hold, a person's manual one),
//! each with who holds it, why and until when. A scope is frozen while it has one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use crate::incident::model::IncidentId;
use crate::store::{Store, Tx, from_ms, to_ms};

/// One reason a scope is frozen: an incident's hold, or a person's manual one. A scope is
/// frozen while it has at least one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FreezeHold {
    pub scope: String,
    /// The holder's key: the incident's id, or the person's identity (`cli:alice`).
    #[serde(skip)]
    pub holder_key: String,
    /// Who holds it, for people: `INC-3`, or the identity (`slack:U…`, `cli:alice`).
    pub holder: String,
    /// A display name for a person (from `people`, else the CLI account).
    pub holder_name: String,
    pub incident_id: Option<IncidentId>,
    /// `SEV1 Checkout API returns 502`, for an incident's hold.
    pub incident: Option<String>,
    pub reason: Option<String>,
    pub drill: bool,
    pub requested_by: String,
    pub started_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl FreezeHold {
    /// Who holds it, for a person: `INC-2 (SEV1 Checkout API returns 502)` for an
    /// incident (its title, not the freeze's reason), else the person's name.
    pub fn holder_title(&self) -> String {
        match &self.incident {
            Some(i) if !i.is_empty() => format!("{} ({i})", self.holder_name),
            _ => self.holder_name.clone(),
        }
    }

    /// The reason worth showing: none when it only repeats the incident's headline (an
    /// auto-freeze's "INC-2 [SEV1] … declared").
    pub fn own_reason(&self) -> Option<&str> {
        let reason = self.reason.as_deref().filter(|r| !r.is_empty())?;
        let bare = reason.strip_prefix("[DRILL] ").unwrap_or(reason);
        let repeats = self.incident_id.is_some()
            && bare
                .strip_prefix(self.holder_name.as_str())
                .is_some_and(|rest| rest.starts_with(' '));
        (!repeats).then_some(reason)
    }

    /// `INC-2 (SEV1 Checkout API returns 502; release week)`, `alice (release week, until
    /// …)`: the holder (an incident by its title) and the hold's own reason and expiry.
    pub fn label(&self) -> String {
        let until = self
            .expires_at
            .map(|t| format!("until {}", t.format("%Y-%m-%d %H:%M UTC")));
        let said: Vec<String> = [self.own_reason().map(str::to_string), until]
            .into_iter()
            .flatten()
            .collect();
        let said = said.join(", ");
        match (&self.incident, said.is_empty()) {
            (Some(i), true) if !i.is_empty() => format!("{} ({i})", self.holder_name),
            (Some(i), false) if !i.is_empty() => format!("{} ({i}; {said})", self.holder_name),
            (_, true) => self.holder_name.clone(),
            (_, false) => format!("{} ({said})", self.holder_name),
        }
    }
}

/// A hold to place; placing it again (same scope and holder) renews its reason and expiry.
pub struct NewHold<'a> {
    pub scope: &'a str,
    pub holder_key: &'a str,
    pub incident_id: Option<&'a IncidentId>,
    pub reason: Option<&'a str>,
    pub drill: bool,
    pub requested_by: &'a str,
    pub started_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct HoldRow {
    scope: String,
    holder: String,
    incident_id: Option<String>,
    reason: Option<String>,
    drill: i64,
    requested_by: String,
    started_at: i64,
    expires_at: Option<i64>,
    number: Option<i64>,
    severity: Option<String>,
    title: Option<String>,
    display_name: Option<String>,
}

impl From<HoldRow> for FreezeHold {
    fn from(r: HoldRow) -> Self {
        let (holder, holder_name, incident) = match r.number {
            Some(n) => {
                let key = format!("INC-{n}");
                let what = format!(
                    "{} {}",
                    r.severity.unwrap_or_default(),
                    r.title.unwrap_or_default()
                );
                (key.clone(), key, Some(what.trim().to_string()))
            }
            None => {
                let name = r.display_name.unwrap_or_else(|| {
                    r.holder
                        .strip_prefix("cli:")
                        .unwrap_or(&r.holder)
                        .to_string()
                });
                (r.holder.clone(), name, None)
            }
        };
        Self {
            scope: r.scope,
            holder_key: r.holder,
            holder,
            holder_name,
            incident_id: r.incident_id.map(IncidentId),
            incident,
            reason: r.reason,
            drill: r.drill != 0,
            requested_by: r.requested_by,
            started_at: from_ms(r.started_at),
            expires_at: r.expires_at.map(from_ms),
        }
    }
}

const HOLD_SELECT: &str = "SELECT h.scope, h.holder, h.incident_id, h.reason, h.drill, h.requested_by, \
     h.started_at, h.expires_at, i.number, i.severity, i.title, p.display_name \
     FROM freeze_holds h LEFT JOIN incidents i ON i.id = h.incident_id \
     LEFT JOIN people p ON p.identity = h.holder";
const HOLD_ORDER: &str = " ORDER BY h.scope, h.started_at, h.id";

impl Tx {
    pub async fn add_hold(&mut self, h: &NewHold<'_>) -> anyhow::Result<()> {
        self.execute(sqlx::query(
            "INSERT INTO freeze_holds (scope, holder, incident_id, reason, drill, requested_by, started_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (scope, holder) DO UPDATE SET reason = COALESCE(excluded.reason, freeze_holds.reason), \
             drill = excluded.drill, requested_by = excluded.requested_by, expires_at = excluded.expires_at",
        )
        .bind(h.scope)
        .bind(h.holder_key)
        .bind(h.incident_id.map(|i| i.0.clone()))
        .bind(h.reason)
        .bind(i64::from(h.drill))
        .bind(h.requested_by)
        .bind(to_ms(h.started_at))
        .bind(h.expires_at.map(to_ms))
        )
        .await?;
        Ok(())
    }

    /// Every hold, by scope then age.
    pub async fn freeze_holds(&mut self) -> anyhow::Result<Vec<FreezeHold>> {
        let sql = format!("{HOLD_SELECT}{HOLD_ORDER}");
        let rows: Vec<HoldRow> = self.fetch(sqlx::query(sqlx::AssertSqlSafe(sql))).await?;
        Ok(rows.into_iter().map(FreezeHold::from).collect())
    }

    /// Removes `holder_key`'s hold on `scope` (every hold on it when `None`); returns what
    /// was removed.
    pub async fn remove_holds(
        &mut self,
        scope: &str,
        holder_key: Option<&str>,
    ) -> anyhow::Result<Vec<FreezeHold>> {
        let removed: Vec<FreezeHold> = self
            .freeze_holds()
            .await?
            .into_iter()
            .filter(|h| h.scope == scope && holder_key.is_none_or(|k| h.holder_key == k))
            .collect();
        for h in &removed {
            self.execute(
                sqlx::query("DELETE FROM freeze_holds WHERE scope = $1 AND holder = $2")
                    .bind(&h.scope)
                    .bind(&h.holder_key),
            )
            .await?;
        }
        Ok(removed)
    }
}

impl Store {
    /// Every hold, by scope then age.
    pub async fn freeze_holds(&self) -> anyhow::Result<Vec<FreezeHold>> {
        let sql = format!("{HOLD_SELECT}{HOLD_ORDER}");
        let rows: Vec<HoldRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        Ok(rows.into_iter().map(FreezeHold::from).collect())
    }
}
