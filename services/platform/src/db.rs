//! Database access through sqlx's `Any` driver, so one set of plain-SQL repositories
//! serves MySQL/MariaDB (deployments) and SQLite (the one-process default). Each
//! service owns its own database and its migrations, one folder per dialect.

mod held;

use std::time::{Duration, Instant};

use sqlx::{
    any::{AnyPoolOptions, AnyQueryResult},
    migrate::{MigrateDatabase, Migrator},
    query_builder::Separated,
    Any, AnyPool, Executor, QueryBuilder, Transaction,
};

use crate::{
    configuration::{DatabaseSettings, ExposeSecret},
    metrics::Metrics,
};

pub use held::{HeldConnection, Lease};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    Sqlite,
}

#[derive(Clone)]
pub struct Database {
    pool: AnyPool,
    dialect: Dialect,
    name: &'static str,
    metrics: Metrics,
}

/// One migration folder per dialect, embedded at compile time by the owning service.
pub struct Migrations {
    pub mysql: Migrator,
    pub sqlite: Migrator,
}

impl Database {
    /// Connects (creating the database when allowed) and applies the migrations.
    pub async fn connect(
        name: &'static str,
        settings: &DatabaseSettings,
        migrations: &Migrations,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect =
            if settings.url.expose_secret().starts_with("sqlite:") { Dialect::Sqlite } else { Dialect::MySql };
        let url = normalise_url(settings.url.expose_secret(), dialect)?;
        if settings.create_if_missing && !Any::database_exists(&url).await.unwrap_or(false) {
            match dialect {
                // Its owner's only (it holds personal data); SQLite gives the -wal and
                // -shm files it makes beside it the same mode.
                Dialect::Sqlite => crate::secret_file::create_private(std::path::Path::new(sqlite_file(&url)))?,
                Dialect::MySql => Any::create_database(&url).await.map_err(|e| {
                    anyhow::anyhow!("cannot create the {name} database ({name}.database.url) at {}: {e}", redact(&url))
                })?,
            }
        }
        let mut options =
            AnyPoolOptions::new().max_connections(settings.max_connections).acquire_timeout(Duration::from_secs(5));
        if dialect == Dialect::Sqlite {
            // WAL lets readers proceed during a write; busy_timeout queues writers instead of failing.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL; PRAGMA \
                        foreign_keys=ON;",
                    )
                    .await
                    .map(|_| ())
                })
            });
        }
        let pool = options.connect(&url).await.map_err(|e| {
            anyhow::anyhow!("cannot connect to the {name} database ({name}.database.url) at {}: {e}", redact(&url))
        })?;
        let migrator = match dialect {
            Dialect::MySql => &migrations.mysql,
            Dialect::Sqlite => &migrations.sqlite,
        };
        migrate(&pool, name, migrator).await?;
        let db = Self { pool, dialect, name, metrics: metrics.clone() };
        metrics.track_pool(&db);
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts timing a named query; the count and latency are recorded when the
    /// returned guard drops. Every repository query goes through this, which is what
    /// lets tests prove that e.g. a cache hit does not touch the database.
    pub fn observe(&self, query: &'static str) -> QueryTimer<'_> {
        QueryTimer { db: self, query, started: Instant::now() }
    }

    /// How often the named query has run in this process.
    pub fn query_count(&self, query: &str) -> u64 {
        self.metrics.db_queries(self.name, query)
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// The SQL of an `INSERT` whose new `id` [`Database::insert_id`] then reads:
    /// SQLite's `Any` driver reports no last insert id, so there the id comes back
    /// through `RETURNING`; MySQL has no `RETURNING` and reports it instead.
    pub fn insert_sql(&self, insert: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("{insert} RETURNING id"),
            Dialect::MySql => insert.to_owned(),
        }
    }

    /// Runs an `INSERT` built from [`Database::insert_sql`] and returns the new id.
    pub async fn insert_id<'q>(
        &self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<i64, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => sqlx::Row::try_get(&query.fetch_one(&self.pool).await?, 0),
            Dialect::MySql => query
                .execute(&self.pool)
                .await?
                .last_insert_id()
                .ok_or_else(|| sqlx::Error::Protocol("the server reported no insert id".into())),
        }
    }

    /// `INSERT ... ON DUPLICATE KEY` / `ON CONFLICT` differ; callers pick by dialect.
    pub fn is_mysql(&self) -> bool {
        self.dialect == Dialect::MySql
    }
}

pub struct QueryTimer<'a> {
    db: &'a Database,
    query: &'static str,
    started: Instant,
}

impl Drop for QueryTimer<'_> {
    fn drop(&mut self) {
        self.db.metrics.observe_db(self.db.name, self.query, self.started.elapsed());
    }
}

/// Is this error a unique-constraint violation (on either dialect)?
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            e.is_unique_violation() || e.code().is_some_and(|c| c == "23000" || c == "2067" || c == "1555")
        }
        _ => false,
    }
}

/// `Ok(true)` for an `INSERT` that went in, `Ok(false)` for one that hit a unique
/// violation (the row, or one with the same unique key, is there already; the failed
/// statement changed nothing, so the transaction goes on), any other error as it is.
pub fn inserted<T>(result: Result<T, sqlx::Error>) -> Result<bool, sqlx::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Rows per multi-row statement: well under every engine's placeholder limit.
pub const ROWS_PER_STATEMENT: usize = 200;

/// Inserts `rows` with one multi-row statement per [`ROWS_PER_STATEMENT`]: `insert`
/// (`INSERT INTO t (a, b) `), then `VALUES` and, per row, the values `bind` pushes.
/// Should a statement hit a unique violation (a row that another transaction wrote
/// meanwhile, or a repeat the caller let through), that statement changed nothing and
/// its rows are inserted one at a time, each that violates left out. Returns the rows
/// that went in, in order. Leave out beforehand the rows known to exist: a conflict
/// then costs the extra statements only when it happens.
pub async fn insert_new<'args, R: Copy>(
    tx: &mut Transaction<'_, Any>,
    insert: &str,
    rows: &[R],
    mut bind: impl FnMut(Separated<'_, 'args, Any, &'static str>, R),
) -> Result<Vec<R>, sqlx::Error> {
    let mut new = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut all = QueryBuilder::new(insert);
        all.push_values(chunk.iter().copied(), &mut bind);
        if inserted(all.build().execute(&mut **tx).await)? {
            new.extend_from_slice(chunk);
            continue;
        }
        for row in chunk {
            let mut one = QueryBuilder::new(insert);
            one.push_values([*row], &mut bind);
            if inserted(one.build().execute(&mut **tx).await)? {
                new.push(*row);
            }
        }
    }
    Ok(new)
}

/// Is the database out of reach (down, restarting, the pool exhausted) rather than
/// refusing the statement? Such a failure is a 503 the client may retry.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        // MariaDB going away mid-statement: "server has gone away", "lost connection",
        // "server shutdown in progress", "connection killed".
        sqlx::Error::Database(e) => {
            e.code().is_some_and(|c| matches!(c.as_ref(), "08S01" | "70100" | "HY000"))
                && ["gone away", "Lost connection", "shutdown", "killed"].iter().any(|m| e.message().contains(m))
        }
        _ => false,
    }
}

pub fn affected(result: &AnyQueryResult) -> u64 {
    result.rows_affected()
}

/// The file of a SQLite URL (or of its path), without the query.
fn sqlite_file(url: &str) -> &str {
    let path = url.trim_start_matches("sqlite://");
    path.split('?').next().unwrap_or(path)
}

fn normalise_url(url: &str, dialect: Dialect) -> anyhow::Result<String> {
    Ok(match dialect {
        Dialect::MySql => url.replacen("mariadb://", "mysql://", 1),
        Dialect::Sqlite => {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            if let Some(parent) = std::path::Path::new(sqlite_file(path)).parent() {
                if !parent.as_os_str().is_empty() {
                    crate::secret_file::create_private_dir(parent)?;
                }
            }
            format!("sqlite://{path}")
        }
    })
}

/// Applies the migrations this release has and the database lacks. A database that a
/// newer release migrated further is fine (a `helm rollback`, or a pod of the release
/// before restarting during a rolling upgrade): migrations only add what the release
/// before can ignore (docs/decisions.md), so the ones this release does not know are
/// named in a warning, not refused as sqlx does by default.
async fn migrate(pool: &AnyPool, name: &str, source: &Migrator) -> anyhow::Result<()> {
    let migrator = Migrator {
        migrations: source.migrations.clone(),
        ignore_missing: true,
        locking: source.locking,
        no_tx: source.no_tx,
    };
    migrator.run(pool).await.map_err(|e| anyhow::anyhow!("migrating the {name} database failed: {e}"))?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .map_err(|e| anyhow::anyhow!("reading the {name} database's migrations failed: {e}"))?;
    let unknown: Vec<i64> =
        applied.into_iter().filter(|v| !migrator.migrations.iter().any(|m| m.version == *v)).collect();
    if !unknown.is_empty() {
        tracing::warn!(
            database = name,
            ?unknown,
            "the database has migrations a newer release applied; this release runs on it without them"
        );
    }
    Ok(())
}

/// Hides the password in a URL for log and error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rollback: the database was migrated by a newer release (one migration more), and
    /// this release still starts on it, keeping what the newer one added.
    #[tokio::test]
    async fn a_database_a_newer_release_migrated_still_opens() {
        use std::borrow::Cow;

        use sqlx::migrate::{Migration, MigrationType};
        let migration = |version: i64, sql: &'static str| {
            Migration::new(version, Cow::Borrowed("step"), MigrationType::Simple, Cow::Borrowed(sql), false)
        };
        let release = |migrations: Vec<Migration>| Migrations {
            mysql: Migrator { migrations: Cow::Owned(vec![]), ..Migrator::DEFAULT },
            sqlite: Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT },
        };
        let this = || vec![migration(1, "CREATE TABLE t (k TEXT PRIMARY KEY)")];
        let newer = {
            let mut newer = this();
            newer.push(migration(2, "ALTER TABLE t ADD COLUMN extra INTEGER NULL"));
            newer
        };
        let settings = DatabaseSettings {
            url: goodsmall_testkit::sqlite_url("rollback").into(),
            max_connections: 1,
            create_if_missing: true,
        };
        let metrics = Metrics::new();
        let upgraded = Database::connect("rollback", &settings, &release(newer), &metrics).await.unwrap();
        sqlx::query("INSERT INTO t (k, extra) VALUES ('a', 1)").execute(upgraded.pool()).await.unwrap();
        upgraded.pool().close().await;

        let rolled_back = Database::connect("rollback", &settings, &release(this()), &metrics)
            .await
            .expect("the release before opens a database the newer one migrated");
        let extra: i64 =
            sqlx::query_scalar("SELECT extra FROM t WHERE k = 'a'").fetch_one(rolled_back.pool()).await.unwrap();
        assert_eq!(extra, 1);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("mysql://root:secret@db:3306/x"), "mysql://root@db:3306/x");
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }

    /// A statement that hits a row already there (or a repeat) is redone row by row:
    /// every other row goes in, and only the rows that went in are returned.
    #[tokio::test]
    async fn insert_new_leaves_out_the_rows_that_exist() {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL)").execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO t (k, n) VALUES ('b', 0)").execute(&pool).await.unwrap();
        let insert = |rows: Vec<&'static str>| {
            let pool = pool.clone();
            async move {
                let mut tx = pool.begin().await.unwrap();
                let new = insert_new(&mut tx, "INSERT INTO t (k, n) ", &rows, |mut row, k| {
                    row.push_bind(k).push_bind(1_i64);
                })
                .await
                .unwrap();
                tx.commit().await.unwrap();
                new
            }
        };

        assert_eq!(insert(vec!["a", "c"]).await, ["a", "c"], "no conflict: one statement");
        assert_eq!(insert(vec!["d", "b", "e", "d"]).await, ["d", "e"], "b exists, d repeats");
        let many: Vec<&'static str> = (0..450).map(|n| &*format!("m{n}").leak()).collect();
        assert_eq!(insert(many.clone()).await, many, "more rows than one statement takes");
        let count: i64 = sqlx::Row::get(&sqlx::query("SELECT COUNT(*) FROM t").fetch_one(&pool).await.unwrap(), 0);
        assert_eq!(count, 5 + 450);
    }
}
