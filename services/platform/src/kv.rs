//! The small key-value vocabulary the services need (codes, throttles, revocations,
//! cache entries), served by Redis in a deployment and by an in-process map in the
//! one-process default. Both honour the same semantics, including expiry; the
//! contract tests in `tests/kv_contract.rs` run against both.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use redis::{aio::ConnectionManager, AsyncCommands};

use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct KvError(#[from] redis::RedisError);

pub type KvResult<T> = Result<T, KvError>;

#[derive(Clone)]
pub struct Kv {
    backend: Backend,
    metrics: Option<Metrics>,
}

#[derive(Clone)]
enum Backend {
    Redis(ConnectionManager),
    Memory(Arc<MemoryStore>),
}

impl Kv {
    /// Connects to Redis; fails fast when the server does not answer.
    pub async fn redis(url: &str) -> KvResult<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(3))
            .set_response_timeout(Duration::from_secs(3))
            .set_number_of_retries(2)
            .set_max_delay(500);
        // The manager's own retries can take minutes against a dead address; a
        // process should rather fail at start and say so.
        let manager = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "no answer from Redis within 5 s")))??;
        Ok(Self { backend: Backend::Redis(manager), metrics: None })
    }

    /// A private in-process store (the one-process default and unit tests).
    pub fn memory() -> Self {
        Self { backend: Backend::Memory(Arc::default()), metrics: None }
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Redis(_) => "redis",
            Backend::Memory(_) => "memory",
        }
    }

    /// The Redis connection, for modules that run their own scripts.
    pub fn redis_connection(&self) -> Option<ConnectionManager> {
        match &self.backend {
            Backend::Redis(c) => Some(c.clone()),
            Backend::Memory(_) => None,
        }
    }

    async fn observe<T>(&self, op: &'static str, fut: impl std::future::Future<Output = KvResult<T>>) -> KvResult<T> {
        let started = Instant::now();
        let result = fut.await;
        if let Some(m) = &self.metrics {
            m.observe_kv(op, result.is_ok(), started.elapsed());
        }
        result
    }

    pub async fn ping(&self) -> KvResult<()> {
        self.observe("ping", async {
            match &self.backend {
                Backend::Redis(c) => redis::cmd("PING").query_async::<()>(&mut c.clone()).await.map_err(Into::into),
                Backend::Memory(_) => Ok(()),
            }
        })
        .await
    }

    pub async fn get(&self, key: &str) -> KvResult<Option<String>> {
        self.observe("get", async {
            match &self.backend {
                Backend::Redis(c) => Ok(c.clone().get(key).await?),
                Backend::Memory(m) => Ok(m.get(key)),
            }
        })
        .await
    }

    pub async fn set(&self, key: &str, value: &str, ttl: Duration) -> KvResult<()> {
        self.observe("set", async {
            match &self.backend {
                Backend::Redis(c) => Ok(c.clone().pset_ex(key, value, millis(ttl)).await?),
                Backend::Memory(m) => {
                    m.set(key, value.to_owned(), Some(ttl));
                    Ok(())
                }
            }
        })
        .await
    }

    /// Sets only when absent; `true` when this call set it.
    pub async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> KvResult<bool> {
        self.observe("set_nx", async {
            match &self.backend {
                Backend::Redis(c) => {
                    let reply: Option<String> = redis::cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(ttl))
                        .query_async(&mut c.clone())
                        .await?;
                    Ok(reply.is_some())
                }
                Backend::Memory(m) => Ok(m.set_nx(key, value, ttl)),
            }
        })
        .await
    }

    pub async fn del(&self, keys: &[&str]) -> KvResult<()> {
        self.observe("del", async {
            match &self.backend {
                Backend::Redis(c) => Ok(c.clone().del(keys).await?),
                Backend::Memory(m) => {
                    keys.iter().for_each(|k| m.del(k));
                    Ok(())
                }
            }
        })
        .await
    }

    /// Increments a counter; a new counter expires after `ttl` (later increments keep
    /// the first expiry, so a window is fixed from its first event).
    pub async fn incr(&self, key: &str, ttl: Duration) -> KvResult<i64> {
        self.observe("incr", async {
            match &self.backend {
                Backend::Redis(c) => {
                    let (n, _): (i64, i64) = redis::pipe()
                        .atomic()
                        .incr(key, 1)
                        .cmd("PEXPIRE")
                        .arg(key)
                        .arg(millis(ttl))
                        .arg("NX")
                        .query_async(&mut c.clone())
                        .await?;
                    Ok(n)
                }
                Backend::Memory(m) => Ok(m.incr(key, ttl)),
            }
        })
        .await
    }

    /// Increments a counter that expires `ttl` after its latest increment (a sliding
    /// memory: it is forgotten only once its events stop for that long).
    pub async fn incr_extending(&self, key: &str, ttl: Duration) -> KvResult<i64> {
        self.observe("incr", async {
            match &self.backend {
                Backend::Redis(c) => {
                    let (n, _): (i64, i64) =
                        redis::pipe().atomic().incr(key, 1).cmd("PEXPIRE").arg(key).arg(millis(ttl)).query_async(&mut c.clone()).await?;
                    Ok(n)
                }
                Backend::Memory(m) => Ok(m.incr_extending(key, ttl)),
            }
        })
        .await
    }

    /// Remaining time to live; `None` when the key is absent or never expires.
    pub async fn ttl(&self, key: &str) -> KvResult<Option<Duration>> {
        self.observe("ttl", async {
            match &self.backend {
                Backend::Redis(c) => {
                    let ms: i64 = c.clone().pttl(key).await?;
                    Ok((ms >= 0).then(|| Duration::from_millis(ms as u64)))
                }
                Backend::Memory(m) => Ok(m.ttl(key)),
            }
        })
        .await
    }
}

fn millis(ttl: Duration) -> u64 {
    ttl.as_millis().max(1) as u64
}

/// An in-process map with Redis-like expiry.
#[derive(Default)]
struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    value: String,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Bound memory: sweep expired entries whenever the map has grown a lot.
        if map.len() > 4096 && map.len().is_power_of_two() {
            map.retain(|_, e| e.live(now));
        }
        f(&mut map, now)
    }

    fn get(&self, key: &str) -> Option<String> {
        self.with(|map, now| map.get(key).filter(|e| e.live(now)).map(|e| e.value.clone()))
    }

    fn set(&self, key: &str, value: String, ttl: Option<Duration>) {
        self.with(|map, now| {
            map.insert(key.to_owned(), Entry { value, expires_at: ttl.map(|t| now + t) });
        })
    }

    fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> bool {
        self.with(|map, now| {
            if map.get(key).is_some_and(|e| e.live(now)) {
                return false;
            }
            map.insert(key.to_owned(), Entry { value: value.to_owned(), expires_at: Some(now + ttl) });
            true
        })
    }

    fn del(&self, key: &str) {
        self.with(|map, _| map.remove(key));
    }

    fn incr(&self, key: &str, ttl: Duration) -> i64 {
        self.with(|map, now| {
            let entry = map.entry(key.to_owned()).or_insert(Entry { value: "0".into(), expires_at: None });
            if !entry.live(now) {
                *entry = Entry { value: "0".into(), expires_at: None };
            }
            let n = entry.value.parse::<i64>().unwrap_or(0) + 1;
            entry.value = n.to_string();
            entry.expires_at.get_or_insert(now + ttl);
            n
        })
    }

    fn incr_extending(&self, key: &str, ttl: Duration) -> i64 {
        let n = self.incr(key, ttl);
        self.with(|map, now| map.get_mut(key).map(|e| e.expires_at = Some(now + ttl)));
        n
    }

    fn ttl(&self, key: &str) -> Option<Duration> {
        self.with(|map, now| {
            map.get(key).filter(|e| e.live(now)).and_then(|e| e.expires_at).map(|t| t - now)
        })
    }
}
