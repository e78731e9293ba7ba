//! Group commit for bookkeeping. What an attempt came to (done, failed, put back for later),
//! and the answer a chat command was given (kept for its retries), are written by one task:
//! everything queued while a transaction runs goes into the next one, so a burst pays one
//! `BEGIN`/`COMMIT` and one turn at the SQLite writer per batch, not one per item. Each
//! caller still waits for its own item to be committed and gets its own answer.

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::{Store, Tx, to_ms};
use crate::incident::timeline::NewEntry;

/// At most this many outcomes go into one transaction.
const BATCH: usize = 64;

/// How long the writer gathers after the first item of a batch. Under a burst each command
/// leaves one answer to keep and each effect one outcome; without the wait each would
/// arrive to an idle writer and cost a transaction of its own. Nobody waits on these
/// writes in a hurry: an effect's slot is held this much longer, a retry's answer waits.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// One outcome to write; see [`Store::complete_effect`], [`Store::fail_effect`] and
/// [`Store::reschedule_effect`].
#[derive(Debug)]
pub(super) enum Outcome {
    Finish {
        id: i64,
        state: &'static str,
        error: Option<String>,
        result: Option<String>,
        entry: Option<NewEntry>,
    },
    Reschedule {
        id: i64,
        run_at: DateTime<Utc>,
        error: Option<String>,
        refund: bool,
        waiting_on: Option<String>,
    },
    /// The answer a delivery was given; see [`Store::save_delivery_reply`].
    KeepReply {
        source: &'static str,
        id: String,
        reply: String,
    },
}

type Job = (Outcome, oneshot::Sender<Result<bool, String>>);

/// The sending side, shared by every clone of a [`Store`].
#[derive(Clone)]
pub(super) struct OutcomeWriter(mpsc::UnboundedSender<Job>);

impl OutcomeWriter {
    /// Starts the writing task for `store` (a handle without a writer of its own).
    pub(super) fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(store, rx));
        Self(tx)
    }

    /// Queues `outcome` and waits until it is committed. `Ok(false)`: the effect was no
    /// longer ours to update (its lease was taken over).
    pub(super) async fn write(&self, outcome: Outcome) -> anyhow::Result<bool> {
        let (done, answer) = oneshot::channel();
        self.0
            .send((outcome, done))
            .map_err(|_| anyhow::anyhow!("the outcome writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the outcome writer stopped before committing"))?
            .map_err(anyhow::Error::msg)
    }
}

async fn write_batches(store: Store, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut jobs, BATCH).await > 0 {
        if jobs.len() < BATCH {
            tokio::time::sleep(GATHER).await;
            while jobs.len() < BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let outcomes: Vec<&Outcome> = jobs.iter().map(|(o, _)| o).collect();
        match store.write_outcomes(&outcomes).await {
            Ok(applied) => {
                for ((_, done), applied) in jobs.drain(..).zip(applied) {
                    let _ = done.send(Ok(applied));
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                for (_, done) in jobs.drain(..) {
                    let _ = done.send(Err(message.clone()));
                }
            }
        }
    }
}

impl Store {
    /// Writes `outcomes` in one background transaction; for each, whether it applied.
    pub(super) async fn write_outcomes(&self, outcomes: &[&Outcome]) -> anyhow::Result<Vec<bool>> {
        let mut tx = self.begin_background().await?;
        let mut applied = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            applied.push(tx.write_outcome(outcome).await?);
        }
        tx.commit().await?;
        Ok(applied)
    }
}

impl Tx {
    async fn write_outcome(&mut self, outcome: &Outcome) -> anyhow::Result<bool> {
        let now = to_ms(Utc::now());
        match outcome {
            Outcome::Finish {
                id,
                state,
                error,
                result,
                entry,
            } => {
                let finished = sqlx::query(
                    "UPDATE effects SET state = $1, last_error = COALESCE($2, last_error), result = $3, \
                     lease_until = NULL, lease_owner = NULL, waiting_on = NULL, updated_at = $4 \
                     WHERE id = $5 AND state = 'running'",
                )
                .bind(*state)
                .bind(error.as_deref())
                .bind(result.as_deref())
                .bind(now)
                .bind(*id);
                if self.execute(finished).await?.rows_affected() == 0 {
                    return Ok(false);
                }
                // The next effect of its ordering key, if one waits for it, may now run.
                self.hold(
                    sqlx::query("UPDATE effects SET after_effect = NULL WHERE after_effect = $1")
                        .bind(*id),
                )
                .await?;
                if let Some(entry) = entry {
                    self.append_timeline(entry).await?;
                }
                Ok(true)
            }
            Outcome::Reschedule {
                id,
                run_at,
                error,
                refund,
                waiting_on,
            } => {
                let rescheduled = sqlx::query(
                    "UPDATE effects SET state = 'pending', run_at = $1, last_error = COALESCE($2, last_error), lease_until = NULL, \
                     lease_owner = NULL, attempts = attempts - $3, waiting_on = $6, updated_at = $4 WHERE id = $5 AND state = 'running'",
                )
                .bind(to_ms(*run_at))
                .bind(error.as_deref())
                .bind(i64::from(*refund))
                .bind(now)
                .bind(*id)
                .bind(waiting_on.as_deref());
                // Nobody reads whether it applied (an effect whose lease was taken over is
                // simply left to its new owner), so it costs no round trip of its own.
                self.hold(rescheduled).await?;
                Ok(true)
            }
            Outcome::KeepReply { source, id, reply } => {
                let keep = sqlx::query(
                    "INSERT INTO inbound_seen (source, id, received_at, reply) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (source, id) DO UPDATE SET reply = excluded.reply \
                     WHERE inbound_seen.reply IS NULL",
                )
                .bind(*source)
                .bind(id)
                .bind(now)
                .bind(reply);
                self.hold(keep).await?;
                Ok(true)
            }
        }
    }
}
