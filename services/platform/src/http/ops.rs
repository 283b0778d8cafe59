use std::time::Duration;

use axum::{extract::State, http::StatusCode, response::IntoResponse, Json};
use serde_json::json;

use crate::{
    db::Database,
    error::{ApiError, ErrorCode},
    kv::Kv,
};

/// A dependency that must answer for the process to be ready.
// One per dependency, made at start: the size difference (a Kv's Redis handle) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Check {
    Database(Database),
    Kv(Kv),
}

impl Check {
    fn name(&self) -> String {
        match self {
            Check::Database(db) => format!("database:{}", db.name()),
            Check::Kv(kv) => format!("kv:{}", kv.backend_name()),
        }
    }

    async fn run(&self) -> Result<(), String> {
        let probe = async {
            match self {
                Check::Database(db) => db.ping().await.map_err(|e| e.to_string()),
                Check::Kv(kv) => kv.ping().await.map_err(|e| e.to_string()),
            }
        };
        tokio::time::timeout(Duration::from_secs(2), probe).await.unwrap_or_else(|_| Err("timed out".into()))
    }
}

#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Check>,
}

impl Readiness {
    pub fn with(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    pub fn extend(&mut self, other: Readiness) {
        self.checks.extend(other.checks);
    }
}

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(readiness): State<Readiness>) -> Result<impl IntoResponse, ApiError> {
    let results = futures_join_all(readiness.checks.iter().map(|c| async move { (c.name(), c.run().await) })).await;
    let failed: Vec<String> =
        results.iter().filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}"))).collect();
    if !failed.is_empty() {
        return Err(ApiError::new(ErrorCode::ServiceUnavailable, format!("not ready: {}", failed.join("; "))));
    }
    let checks: serde_json::Map<_, _> = results.into_iter().map(|(name, _)| (name, json!("ok"))).collect();
    Ok((StatusCode::OK, Json(json!({ "status": "ready", "checks": checks }))))
}

async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    // Few checks; run them one after another to keep the dependency tree small.
    for f in futures {
        out.push(f.await);
    }
    out
}
