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
pub enum KvError {
    #[error("key-value store: {0}")]
    Redis(#[from] redis::RedisError),
    /// A counter whose stored value is not a whole number (written by something else,
    /// or corrupt): an error, as Redis's `INCR` answers, never counted on from 0.
    #[error("key-value store: {key} holds {value:?}, not a whole number")]
    NotACounter {
        key: String,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
}

pub type KvResult<T> = Result<T, KvError>;

/// Is Redis out of reach (refused, dropped, timed out) rather than refusing the
/// command? Such a failure is a 503 the client may retry.
pub fn redis_unavailable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// How long one attempt to (re)connect to Redis may take.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one Redis command may take to answer.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Kv {
    backend: Backend,
    metrics: Option<Metrics>,
}

// The Redis connection manager is a few hundred bytes; one Kv per process, cloned by
// handle, so the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Backend {
    Redis(ConnectionManager),
    Memory(Arc<MemoryStore>),
}

impl Kv {
    /// Connects to Redis, trying for up to 5 s at start (Redis may come up a moment
    /// after the process), then fails and says so.
    ///
    /// Once running, a request that needs a Redis which is down fails fast: the
    /// connection manager makes one reconnection attempt of at most
    /// [`REDIS_CONNECT_TIMEOUT`] (refused at once when nothing listens), and a command
    /// gets at most [`REDIS_RESPONSE_TIMEOUT`], so the caller answers 503 within about a
    /// second, not after the manager's backoff (1.2 to 2.5 s with two retries).
    pub async fn redis(url: &str) -> KvResult<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_CONNECT_TIMEOUT)
            .set_response_timeout(REDIS_RESPONSE_TIMEOUT)
            .set_number_of_retries(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let manager = loop {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(manager) => break manager,
                Err(e) if Instant::now() >= deadline => {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::IoError,
                        "no answer from Redis within 5 s",
                        e.to_string(),
                    ))
                    .into())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
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

    /// Whether the store can lose its keys while this process runs (Redis: flushed,
    /// restarted, failed over). The in-process store loses them only with the process.
    pub fn may_lose_keys(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
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
        self.incr_expiring(key, ttl, false).await
    }

    /// Increments a counter that expires `ttl` after its latest increment (a sliding
    /// memory: it is forgotten only once its events stop for that long).
    pub async fn incr_extending(&self, key: &str, ttl: Duration) -> KvResult<i64> {
        self.incr_expiring(key, ttl, true).await
    }

    /// `INCR` and `PEXPIRE` in one transaction: every increment moves the expiry when
    /// `extend`, else only a new counter gets one (`NX`).
    async fn incr_expiring(&self, key: &str, ttl: Duration, extend: bool) -> KvResult<i64> {
        self.observe("incr", async {
            match &self.backend {
                Backend::Redis(c) => {
                    let mut pipe = redis::pipe();
                    pipe.atomic().incr(key, 1).cmd("PEXPIRE").arg(key).arg(millis(ttl));
                    if !extend {
                        pipe.arg("NX");
                    }
                    let (n, _): (i64, i64) = pipe.query_async(&mut c.clone()).await?;
                    Ok(n)
                }
                Backend::Memory(m) if extend => m.incr_extending(key, ttl),
                Backend::Memory(m) => m.incr(key, ttl),
            }
        })
        .await
    }

    /// Several keys in one round trip (`MGET`), in the order asked.
    pub async fn get_many(&self, keys: &[&str]) -> KvResult<Vec<Option<String>>> {
        self.observe("get", async {
            match &self.backend {
                // MGET of one key answers a bare value: ask for a list explicitly.
                Backend::Redis(c) => Ok(redis::cmd("MGET").arg(keys).query_async(&mut c.clone()).await?),
                Backend::Memory(m) => Ok(keys.iter().map(|k| m.get(k)).collect()),
            }
        })
        .await
    }

    /// Writes every entry (`None`: never expires) and deletes `guard`, all at once, but
    /// only while `guard` still holds `token`; `false` (nothing written) when it does
    /// not. A writer sets the guard before it reads what it will write: a store that
    /// lost its keys in between (a flush, a restart) has lost the guard too, so what
    /// was read is never written into a store that forgot what came after it.
    pub async fn set_all_if(
        &self,
        guard: &str,
        token: &str,
        entries: &[(String, String, Option<Duration>)],
    ) -> KvResult<bool> {
        self.observe("set_all_if", async {
            match &self.backend {
                Backend::Redis(c) => {
                    let mut invocation = SET_ALL_IF.key(guard);
                    invocation.arg(token);
                    for (key, value, ttl) in entries {
                        invocation.arg(key).arg(value).arg(ttl.map_or(0, millis));
                    }
                    let done: i64 = invocation.invoke_async(&mut c.clone()).await?;
                    Ok(done == 1)
                }
                Backend::Memory(m) => Ok(m.set_all_if(guard, token, entries)),
            }
        })
        .await
    }

    /// Which store this is: Redis's `run_id` (new at every start of the server, and
    /// another on a failover to a replica), or the in-process store's own id. A store
    /// that restarted from a snapshot answers a different id than before.
    pub async fn store_id(&self) -> KvResult<String> {
        self.observe("store_id", async {
            match &self.backend {
                Backend::Redis(c) => {
                    let info: String = redis::cmd("INFO").arg("server").query_async(&mut c.clone()).await?;
                    let run_id =
                        info.lines().find_map(|line| line.strip_prefix("run_id:")).map(|id| id.trim().to_owned());
                    run_id.ok_or_else(|| {
                        redis::RedisError::from((redis::ErrorKind::ResponseError, "INFO server has no run_id")).into()
                    })
                }
                Backend::Memory(m) => Ok(m.id.clone()),
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

/// KEYS: guard. ARGV: token, then per entry: key, value, ttl in ms (0: none).
static SET_ALL_IF: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 3 do
  if ARGV[i + 2] == '0' then
    redis.call('SET', ARGV[i], ARGV[i + 1])
  else
    redis.call('SET', ARGV[i], ARGV[i + 1], 'PX', ARGV[i + 2])
  end
end
redis.call('DEL', KEYS[1])
return 1",
    )
});

/// An in-process map with Redis-like expiry.
struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
    /// This store's identity (see [`Kv::store_id`]).
    id: String,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self { entries: Mutex::default(), id: format!("memory-{}", uuid::Uuid::new_v4()) }
    }
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

    fn set_all_if(&self, guard: &str, token: &str, entries: &[(String, String, Option<Duration>)]) -> bool {
        self.with(|map, now| {
            if map.get(guard).filter(|e| e.live(now)).map(|e| e.value.as_str()) != Some(token) {
                return false;
            }
            for (key, value, ttl) in entries {
                map.insert(key.clone(), Entry { value: value.clone(), expires_at: ttl.map(|t| now + t) });
            }
            map.remove(guard);
            true
        })
    }

    fn del(&self, key: &str) {
        self.with(|map, _| map.remove(key));
    }

    fn incr(&self, key: &str, ttl: Duration) -> KvResult<i64> {
        self.with(|map, now| {
            let entry = map.entry(key.to_owned()).or_insert(Entry { value: "0".into(), expires_at: None });
            if !entry.live(now) {
                *entry = Entry { value: "0".into(), expires_at: None };
            }
            let n = entry.value.parse::<i64>().map_err(|source| KvError::NotACounter {
                key: key.to_owned(),
                value: entry.value.clone(),
                source,
            })? + 1;
            entry.value = n.to_string();
            entry.expires_at.get_or_insert(now + ttl);
            Ok(n)
        })
    }

    fn incr_extending(&self, key: &str, ttl: Duration) -> KvResult<i64> {
        let n = self.incr(key, ttl)?;
        self.with(|map, now| map.get_mut(key).map(|e| e.expires_at = Some(now + ttl)));
        Ok(n)
    }

    fn ttl(&self, key: &str) -> Option<Duration> {
        self.with(|map, now| map.get(key).filter(|e| e.live(now)).and_then(|e| e.expires_at).map(|t| t - now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_store_counts_only_whole_numbers() {
        let store = MemoryStore::default();
        assert_eq!(store.incr("n", Duration::from_secs(60)).unwrap(), 1);
        assert_eq!(store.incr_extending("n", Duration::from_secs(60)).unwrap(), 2);
        store.set("word", "many".into(), None);
        match store.incr("word", Duration::from_secs(60)) {
            Err(KvError::NotACounter { key, value, .. }) => {
                assert_eq!((key.as_str(), value.as_str()), ("word", "many"))
            }
            other => panic!("a counter holding \"many\" must be an error, got {other:?}"),
        }
        assert!(store.incr_extending("word", Duration::from_secs(60)).is_err());
        assert_eq!(store.get("word").as_deref(), Some("many"), "left as it was");
    }
}
