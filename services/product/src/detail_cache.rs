//! Product detail through a look-aside cache (`product:detail:v1:{id}`).
//!
//! - Hits never touch the database.
//! - Misses are single-flight per product within a process: when a hot product's
//!   entry expires, one request reloads it and the others wait for that result.
//! - TTLs get random jitter, so entries filled together do not expire together.
//! - "No such product" is cached briefly too, so probing unknown ids is cheap.
//! - Writers store the fresh value (`SET`); readers fill only an empty slot
//!   (`SET NX`), so a slow reader holding a pre-update row cannot overwrite the
//!   writer's fresh value.
//! - If the cache is down, reads go to the database (slower, still correct).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use goodsmall_platform::kv::Kv;
use rand::Rng;

use crate::{
    catalogue::{Catalogue, CatalogueError, Product},
    configuration::CacheSettings,
};

pub fn detail_key(id: i64) -> String {
    format!("product:detail:v1:{id}")
}

type Flight = Arc<tokio::sync::Mutex<()>>;

#[derive(Clone)]
pub struct DetailCache {
    kv: Kv,
    catalogue: Catalogue,
    settings: CacheSettings,
    flights: Arc<Mutex<HashMap<i64, Flight>>>,
}

impl DetailCache {
    pub fn new(kv: Kv, catalogue: Catalogue, settings: CacheSettings) -> Self {
        Self { kv, catalogue, settings, flights: Arc::default() }
    }

    pub async fn get(&self, id: i64) -> Result<Option<Product>, CatalogueError> {
        if let Some(cached) = self.lookup(id).await {
            return Ok(cached);
        }
        let flight = self.join_flight(id);
        let result = async {
            let _leader = flight.lock().await;
            // Whoever held the lock before us has probably filled the entry.
            if let Some(cached) = self.lookup(id).await {
                return Ok(cached);
            }
            let product = self.catalogue.find_by_id(id).await?;
            self.fill(id, product.as_ref()).await;
            Ok(product)
        }
        .await;
        self.leave_flight(id, flight);
        result
    }

    /// After a write: the fresh value replaces whatever is cached.
    pub async fn store(&self, product: &Product) {
        let value = serde_json::to_string(&Some(product)).expect("a product serialises");
        if let Err(e) = self.kv.set(&detail_key(product.id), &value, self.ttl()).await {
            // The entry may now be stale until its TTL; drop it instead.
            tracing::warn!(product_id = product.id, error = %e, "cannot refresh the product cache; evicting");
            let _ = self.kv.del(&[&detail_key(product.id)]).await;
        }
    }

    /// `Some(None)`: known missing; `None`: not cached (or the cache is unavailable).
    async fn lookup(&self, id: i64) -> Option<Option<Product>> {
        match self.kv.get(&detail_key(id)).await {
            Ok(Some(json)) => match serde_json::from_str(&json) {
                Ok(cached) => Some(cached),
                Err(e) => {
                    tracing::warn!(product_id = id, error = %e, "unreadable cache entry; reloading");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(product_id = id, error = %e, "product cache unavailable; reading the database");
                None
            }
        }
    }

    async fn fill(&self, id: i64, product: Option<&Product>) {
        let ttl = if product.is_some() { self.ttl() } else { self.settings.missing_ttl() };
        let value = serde_json::to_string(&product).expect("a product serialises");
        if let Err(e) = self.kv.set_nx(&detail_key(id), &value, ttl).await {
            tracing::warn!(product_id = id, error = %e, "cannot fill the product cache");
        }
    }

    fn ttl(&self) -> Duration {
        let jitter = rand::thread_rng().gen_range(0..=self.settings.jitter_secs);
        self.settings.ttl() + Duration::from_secs(jitter)
    }

    fn join_flight(&self, id: i64) -> Flight {
        self.flights.lock().expect("flight map").entry(id).or_default().clone()
    }

    fn leave_flight(&self, id: i64, flight: Flight) {
        let mut flights = self.flights.lock().expect("flight map");
        // Ours and the map's are the last two handles: nobody else is waiting.
        if Arc::strong_count(&flight) <= 2 {
            flights.remove(&id);
        }
    }
}
