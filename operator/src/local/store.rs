//! FlashSale manifests of the one-process shop, in the local operator's own database
//! (`operator.database.url`, schema in operator/migrations): what the Kubernetes API
//! keeps for the cluster operator (spec, generation, status, Events, a pending
//! deletion).

use chrono::{DateTime, Utc};
use goodsmall_platform::{
    clock::now_millis,
    db::{is_unique_violation, Database, Migrations},
};
use serde::Serialize;
use sqlx::Row;

use crate::{
    crd::{FlashSaleSpec, FlashSaleStatus},
    reconcile::Note,
};

/// Why the manifest store could not read or write a manifest. The failure is the
/// source; the local routes give each its HTTP answer (`routes`: an unreachable
/// database is a 503 the client may retry, anything else a 500).
#[derive(Debug, thiserror::Error)]
pub enum ManifestStoreError {
    #[error("the manifest database failed")]
    Database(#[from] sqlx::Error),
    /// A stored spec, status or Events column that is not the JSON this release writes.
    #[error("flashsale {name} holds a {column} that does not parse")]
    Corrupt {
        name: String,
        column: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A spec, status or Events list that does not serialise (no release writes one).
    #[error("the {what} of flashsale {name} does not serialise")]
    Encode {
        name: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

pub type StoreResult<T> = Result<T, ManifestStoreError>;

impl goodsmall_platform::error::Unreachable for ManifestStoreError {
    fn unreachable(&self) -> Option<&'static str> {
        match self {
            ManifestStoreError::Database(e) => e.unreachable(),
            ManifestStoreError::Corrupt { .. } | ManifestStoreError::Encode { .. } => None,
        }
    }
}

/// `value` as the JSON text stored in a column.
fn encode(name: &str, what: &'static str, value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|source| ManifestStoreError::Encode { name: name.to_owned(), what, source })
}

/// Events kept per manifest (newest last).
const EVENTS_KEPT: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub name: String,
    pub merchant_id: i64,
    pub spec: FlashSaleSpec,
    pub generation: i64,
    pub status: FlashSaleStatus,
    pub events: Vec<RecordedEvent>,
    pub deleting: bool,
    /// The `goodsmall.io/halted` annotation's value, when set.
    pub halted: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RecordedEvent {
    pub time: DateTime<Utc>,
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
}

#[derive(Clone)]
pub struct ManifestStore {
    db: Database,
}

/// What applying a manifest did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Configured,
    Unchanged,
}

/// The manifest store's schema, for `Database::connect`.
pub fn migrations() -> Migrations {
    Migrations { mysql: sqlx::migrate!("./migrations/mysql"), sqlite: sqlx::migrate!("./migrations/sqlite") }
}

const COLUMNS: &str = "name, merchant_id, spec, generation, status, events, deleting, created_at, halted";

impl ManifestStore {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Moves the manifests an earlier release kept in the order database (its
    /// `flash_sale_manifests` table, which the order migrations still create) into this
    /// store, once: copied, then deleted there. A manifest of the same name here wins.
    /// The count moved.
    pub async fn carry_over(&self, order_db: &Database) -> StoreResult<usize> {
        let select = format!("SELECT {COLUMNS} FROM flash_sale_manifests");
        let rows = sqlx::query(&select).fetch_all(order_db.pool()).await?;
        let insert = format!("INSERT INTO flash_sale_manifests ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        let mut moved = 0;
        for row in &rows {
            let name: String = row.try_get("name")?;
            let copied = sqlx::query(&insert)
                .bind(&name)
                .bind(row.try_get::<i64, _>("merchant_id")?)
                .bind(row.try_get::<String, _>("spec")?)
                .bind(row.try_get::<i64, _>("generation")?)
                .bind(row.try_get::<String, _>("status")?)
                .bind(row.try_get::<String, _>("events")?)
                .bind(row.try_get::<i32, _>("deleting")?)
                .bind(row.try_get::<i64, _>("created_at")?)
                .bind(row.try_get::<Option<String>, _>("halted")?)
                .execute(self.db.pool())
                .await;
            match copied {
                Ok(_) => moved += 1,
                Err(e) if is_unique_violation(&e) => {
                    tracing::warn!(name, "a manifest of this name exists already; the order database's copy is dropped")
                }
                Err(e) => return Err(e.into()),
            }
            sqlx::query("DELETE FROM flash_sale_manifests WHERE name = ?").bind(&name).execute(order_db.pool()).await?;
        }
        if moved > 0 {
            tracing::info!(moved, "FlashSale manifests moved from the order database to the operator's");
        }
        Ok(moved)
    }

    /// Creates or updates a manifest; the generation moves when the spec changes.
    /// `Ok(Err(message))`, a refusal, when it belongs to another merchant, is being
    /// deleted or was created meanwhile; `Err` when the store failed.
    pub async fn apply(
        &self,
        name: &str,
        merchant_id: i64,
        spec: &FlashSaleSpec,
    ) -> StoreResult<Result<Applied, String>> {
        let text = encode(name, "spec", spec)?;
        match self.get(name).await? {
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO flash_sale_manifests (name, merchant_id, spec, generation, \
                    status, events, deleting, created_at) VALUES (?, ?, ?, 1, '{}', '[]', 0, ?)",
                )
                .bind(name)
                .bind(merchant_id)
                .bind(&text)
                .bind(now_millis())
                .execute(self.db.pool())
                .await;
                match inserted {
                    Ok(_) => Ok(Ok(Applied::Created)),
                    // Another apply of the same name won the race.
                    Err(e) if is_unique_violation(&e) => {
                        Ok(Err(format!("flashsale {name} was created meanwhile; apply again")))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Some(current) if current.merchant_id != merchant_id => {
                Ok(Err(format!("flashsale {name} belongs to another merchant")))
            }
            Some(current) if current.deleting => Ok(Err(format!("flashsale {name} is being deleted"))),
            Some(current) if current.spec == *spec => Ok(Ok(Applied::Unchanged)),
            Some(_) => {
                sqlx::query("UPDATE flash_sale_manifests SET spec = ?, generation = generation + 1 WHERE name = ?")
                    .bind(&text)
                    .bind(name)
                    .execute(self.db.pool())
                    .await?;
                Ok(Ok(Applied::Configured))
            }
        }
    }

    pub async fn get(&self, name: &str) -> StoreResult<Option<Recorded>> {
        let row = sqlx::query(
            "SELECT name, merchant_id, spec, generation, status, events, deleting, halted FROM \
            flash_sale_manifests WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| recorded(&r)).transpose()
    }

    pub async fn list(&self) -> StoreResult<Vec<Recorded>> {
        let rows = sqlx::query(
            "SELECT name, merchant_id, spec, generation, status, events, deleting, halted FROM \
            flash_sale_manifests ORDER BY name",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(recorded).collect()
    }

    pub async fn save(&self, name: &str, status: &FlashSaleStatus, notes: &[Note]) -> StoreResult<()> {
        let Some(current) = self.get(name).await? else { return Ok(()) };
        let mut events = current.events;
        events.extend(notes.iter().map(|n| RecordedEvent {
            time: Utc::now(),
            type_: if n.warning { "Warning" } else { "Normal" }.into(),
            reason: n.reason.clone(),
            message: n.message.clone(),
        }));
        let skip = events.len().saturating_sub(EVENTS_KEPT);
        let events: Vec<_> = events.into_iter().skip(skip).collect();
        sqlx::query("UPDATE flash_sale_manifests SET status = ?, events = ? WHERE name = ?")
            .bind(encode(name, "status", status)?)
            .bind(encode(name, "Events", &events)?)
            .bind(name)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Sets (`Some`) or removes the halt annotation.
    pub async fn set_halted(&self, name: &str, value: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE flash_sale_manifests SET halted = ? WHERE name = ?")
            .bind(value)
            .bind(name)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    pub async fn mark_deleting(&self, name: &str) -> StoreResult<()> {
        sqlx::query("UPDATE flash_sale_manifests SET deleting = 1 WHERE name = ?")
            .bind(name)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    pub async fn remove(&self, name: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM flash_sale_manifests WHERE name = ?").bind(name).execute(self.db.pool()).await?;
        Ok(())
    }
}

fn recorded(r: &sqlx::any::AnyRow) -> StoreResult<Recorded> {
    let name: String = r.try_get("name")?;
    Ok(Recorded {
        merchant_id: r.try_get("merchant_id")?,
        spec: json_column(r, &name, "spec")?,
        generation: r.try_get("generation")?,
        status: json_column(r, &name, "status")?,
        events: json_column(r, &name, "events")?,
        deleting: r.try_get::<i32, _>("deleting")? != 0,
        halted: r.try_get("halted")?,
        name,
    })
}

/// A column of manifest `name` that holds JSON.
fn json_column<T: serde::de::DeserializeOwned>(
    r: &sqlx::any::AnyRow,
    name: &str,
    column: &'static str,
) -> StoreResult<T> {
    let text: String = r.try_get(column)?;
    serde_json::from_str(&text).map_err(|source| ManifestStoreError::Corrupt { name: name.to_owned(), column, source })
}
