//! `people`: display names for stored identities, cached from the platforms
//! (see [`crate::people`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Store, opt_from_ms, to_ms};
use crate::incident::identity::Identity;
use crate::incident::text::display_name;
use crate::people::Names;

/// One cached name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub display_name: String,
    /// When the platform said so; `None` for a name a payload hinted at, not yet looked up.
    pub fetched_at: Option<DateTime<Utc>>,
}

/// How long a name read for a command's actor is used without reading it again. Names
/// change rarely, and this process's own writes replace what it holds at once.
const RECENT_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// People read lately by [`Store::recent_person`], by identity; writes through this store
/// drop their entry.
#[derive(Debug, Default)]
pub(super) struct Recent(std::sync::Mutex<HashMap<String, (Person, std::time::Instant)>>);

impl Recent {
    fn get(&self, identity: &Identity) -> Option<Person> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(identity.as_str())
            .filter(|(_, at)| at.elapsed() < RECENT_FOR)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, identity: &Identity, person: &Person) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 10_000 {
            map.retain(|_, (_, at)| at.elapsed() < RECENT_FOR);
        }
        let entry = (person.clone(), std::time::Instant::now());
        map.insert(identity.as_str().to_string(), entry);
    }

    fn forget(&self, identity: &Identity) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(identity.as_str());
    }
}

impl Store {
    /// [`person`](Self::person), answered from memory when read in the last 30 s: every
    /// chat command names its actor, and a burst comes from few people.
    pub async fn recent_person(&self, identity: &Identity) -> anyhow::Result<Option<Person>> {
        if let Some(person) = self.recent_people.get(identity) {
            return Ok(Some(person));
        }
        let person = self.person(identity).await?;
        if let Some(p) = &person {
            self.recent_people.put(identity, p);
        }
        Ok(person)
    }

    pub async fn person(&self, identity: &Identity) -> anyhow::Result<Option<Person>> {
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT display_name, fetched_at FROM people WHERE identity = $1")
                .bind(identity.as_str())
                .fetch_optional(&mut *self.reader().await?)
                .await?;
        Ok(row.map(|(display_name, fetched_at)| Person {
            display_name,
            fetched_at: opt_from_ms(fetched_at),
        }))
    }

    /// The cached names of `stored` values (identities; anything else is skipped).
    pub async fn names<'a>(
        &self,
        stored: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<Names> {
        let mut wanted: Vec<&str> = stored
            .into_iter()
            .filter(|s| crate::people::cacheable(s))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut names = HashMap::new();
        for chunk in wanted.chunks(200) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT identity, display_name FROM people WHERE identity IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
            for identity in chunk {
                query = query.bind(*identity);
            }
            names.extend(query.fetch_all(&mut *self.reader().await?).await?);
        }
        Ok(Names::new(names))
    }

    /// Names are stored cleaned ([`display_name`]): a platform's name is text from outside.
    /// Keeps `hint` (a name a payload carried) for `identity` unless a name is cached.
    pub async fn hint_person(&self, identity: &Identity, hint: &str) -> anyhow::Result<()> {
        let mut tx = self.begin_background().await?;
        tx.execute(
            sqlx::query(
                "INSERT INTO people (identity, display_name, fetched_at) VALUES ($1, $2, NULL) \
             ON CONFLICT (identity) DO NOTHING",
            )
            .bind(identity.as_str())
            .bind(display_name(hint)),
        )
        .await?;
        tx.commit().await?;
        self.recent_people.forget(identity);
        Ok(())
    }

    /// Stores the platform's name for `identity`, fetched at `at`.
    pub async fn put_person(
        &self,
        identity: &Identity,
        name: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_background().await?;
        tx.execute(
            sqlx::query(
                "INSERT INTO people (identity, display_name, fetched_at) VALUES ($1, $2, $3) \
             ON CONFLICT (identity) DO UPDATE SET display_name = excluded.display_name, \
             fetched_at = excluded.fetched_at",
            )
            .bind(identity.as_str())
            .bind(display_name(name))
            .bind(to_ms(at)),
        )
        .await?;
        tx.commit().await?;
        self.recent_people.forget(identity);
        Ok(())
    }
}
