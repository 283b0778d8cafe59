//! The ledger per purchase: what one purchase costs every part of the stack until its
//! payment is PENDING, from two snapshots that `scripts/bench.sh` takes around the lean
//! throughput run (the second once the saga has caught up) divided by the purchases
//! accepted in the run.
//!
//! A snapshot is text, one counter a line: the fields before the last name it, the last
//! is its value. bench.sh writes:
//! - `status NAME N`: MariaDB's global status (Com_commit, Handler_commit,
//!   Innodb_data_fsyncs, Handler_write, ...);
//! - `statements SCHEMA KIND N`: performance_schema's statements by the connection's
//!   schema (one per service) and kind (`Execute` for a prepared statement, `Ping`,
//!   `begin`, `commit`, ...);
//! - `query DB NAME N`: the shop's own count of each named query (`/metrics`);
//! - `rows SCHEMA insert|update|delete N`: performance_schema's table I/O by schema
//!   (rows written to that service's tables);
//! - `redis COMMAND N`: calls since the stats were reset;
//! - `kafka produced TOPIC N`, `kafka consumed GROUP TOPIC N` (`kafka-offsets`) and
//!   `kafka bytes TOPIC N` (the size of the topic's log segments);
//! - `cpu PROCESS TICKS`, `clk_tck N`, `time SECONDS` and, after the run,
//!   `generator_seconds S` (the load generator's user + system time).

use std::collections::BTreeMap;

use anyhow::Context;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot(BTreeMap<String, f64>);

impl Snapshot {
    pub fn parse(text: &str) -> Self {
        let mut map = BTreeMap::new();
        for line in text.lines() {
            let Some((key, value)) = line.trim().rsplit_once(char::is_whitespace) else { continue };
            let key = key.split_whitespace().collect::<Vec<_>>().join(" ");
            if let Ok(v) = value.parse::<f64>() {
                *map.entry(key).or_default() += v;
            }
        }
        Self(map)
    }

    pub fn read(path: &std::path::Path) -> anyhow::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?))
    }

    fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    /// (the rest of the key after `prefix `, value) for every key under `prefix`.
    fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0.iter().filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?.strip_prefix(' ')?, *v)))
    }
}

/// The difference of two snapshots, per purchase.
struct Delta<'a> {
    before: &'a Snapshot,
    after: &'a Snapshot,
    purchases: f64,
}

impl Delta<'_> {
    fn total(&self, key: &str) -> f64 {
        self.after.get(key) - self.before.get(key)
    }
    fn per(&self, key: &str) -> f64 {
        self.total(key) / self.purchases
    }
    /// (rest of key, total difference) for every key under prefix, differences ≠ 0.
    fn under(&self, prefix: &str) -> Vec<(String, f64)> {
        let mut keys: Vec<&str> = self.after.under(prefix).map(|(k, _)| k).collect();
        keys.extend(self.before.under(prefix).map(|(k, _)| k));
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .map(|k| (k.to_owned(), self.total(&format!("{prefix} {k}"))))
            .filter(|(_, v)| v.abs() > 0.0)
            .collect()
    }
}

fn n(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn bytes(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} kB", v / 1000.0)
    } else {
        format!("{v:.0} B")
    }
}

/// The section's lines (name, value), per purchase.
pub fn lines(before: &Snapshot, after: &Snapshot, purchases: u64) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    if purchases == 0 {
        out.push(("purchases".into(), "none accepted: nothing to divide by".into()));
        return out;
    }
    let d = Delta { before, after, purchases: purchases as f64 };
    let seconds = d.total("time");
    out.push((
        "purchases".into(),
        format!(
            "{purchases} accepted; counted over {seconds:.1} s, from the run's start until every payment was PENDING"
        ),
    ));

    // SQL statements per schema (= per service), by kind, then the shop's named queries.
    let statements = d.under("statements");
    let queries = d.under("query");
    let mut schemas: Vec<String> =
        statements.iter().filter_map(|(k, _)| k.split_once(' ').map(|s| s.0.to_owned())).collect();
    schemas.dedup();
    let rows = d.under("rows");
    let mut all_statements = 0.0;
    for schema in &schemas {
        let mut kinds: Vec<(String, f64)> = statements
            .iter()
            .filter_map(|(k, v)| k.split_once(' ').filter(|(s, _)| s == schema).map(|(_, kind)| (kind.to_owned(), *v)))
            .collect();
        kinds.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let pings: f64 = kinds.iter().filter(|(k, _)| k == "Ping").map(|(_, v)| v).sum();
        kinds.retain(|(k, _)| k != "Ping");
        let sum: f64 = kinds.iter().map(|(_, v)| v).sum();
        all_statements += sum;
        let written = |op: &str| rows.iter().find(|(k, _)| *k == format!("{schema} {op}")).map_or(0.0, |(_, v)| *v);
        let (ins, upd, del) = (written("insert"), written("update"), written("delete"));
        let label = if schema == "-" { "(no schema: bench.sh's own)".to_owned() } else { schema.clone() };
        out.push((
            format!("SQL {label}"),
            format!(
                "{} statements ({}) + {} pings; rows written {} (insert {}, update {}, delete {})",
                n(sum / d.purchases),
                kinds.iter().map(|(k, v)| format!("{k} {}", n(v / d.purchases))).collect::<Vec<_>>().join(", "),
                n(pings / d.purchases),
                n((ins + upd + del) / d.purchases),
                n(ins / d.purchases),
                n(upd / d.purchases),
                n(del / d.purchases)
            ),
        ));
        // The shop's databases are named bench_<service>; its query names carry the service.
        let service = schema.strip_prefix("bench_").unwrap_or(schema);
        let mut named: Vec<(String, f64)> = queries
            .iter()
            .filter_map(|(k, v)| k.split_once(' ').filter(|(db, _)| *db == service).map(|(_, q)| (q.to_owned(), *v)))
            .collect();
        named.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if !named.is_empty() {
            out.push((
                format!("  the shop's {service} queries"),
                named.iter().map(|(q, v)| format!("{q} {}", n(v / d.purchases))).collect::<Vec<_>>().join(", "),
            ));
        }
    }
    out.push((
        "SQL all".into(),
        format!(
            "{} statements (Questions {}: prepared-statement executions {}, prepares {}); \
             rows written {} (handler: write {}, update {}, delete {})",
            n(all_statements / d.purchases),
            n(d.per("status Questions")),
            n(d.per("status Com_stmt_execute")),
            n(d.per("status Com_stmt_prepare")),
            n((d.total("status Handler_write") + d.total("status Handler_update") + d.total("status Handler_delete"))
                / d.purchases),
            n(d.per("status Handler_write")),
            n(d.per("status Handler_update")),
            n(d.per("status Handler_delete"))
        ),
    ));
    out.push((
        "commits".into(),
        format!("Com_commit {}, Handler_commit {}", n(d.per("status Com_commit")), n(d.per("status Handler_commit"))),
    ));
    out.push((
        "fsyncs".into(),
        format!(
            "Innodb_data_fsyncs {}, Innodb_log_writes {}; redo written {}",
            n(d.per("status Innodb_data_fsyncs")),
            n(d.per("status Innodb_log_writes")),
            bytes(d.per("status Innodb_os_log_written"))
        ),
    ));

    // Kafka: records produced per topic (with bytes on the log), and fetched per group.
    let produced = d.under("kafka produced");
    let log_bytes = d.under("kafka bytes");
    let bytes_of = |topic: &str| log_bytes.iter().find(|(t, _)| t == topic).map(|(_, v)| *v);
    if produced.is_empty() {
        out.push(("Kafka produced".into(), "nothing (no broker, or no record)".into()));
    }
    for (topic, records) in &produced {
        let b = bytes_of(topic).map_or(String::new(), |b| format!(", {} on the log", bytes(b / d.purchases)));
        out.push((format!("Kafka produced {topic}"), format!("{} records{b}", n(records / d.purchases))));
    }
    for (key, records) in d.under("kafka consumed") {
        let Some((group, topic)) = key.split_once(' ') else { continue };
        // Bytes fetched: the records times the topic's mean size on the log in this window.
        let mean = match (bytes_of(topic), produced.iter().find(|(t, _)| t == topic)) {
            (Some(b), Some((_, r))) if *r > 0.0 => Some(b / r),
            _ => None,
        };
        let b = mean.map_or(String::new(), |m| format!(", ≈{}", bytes(records * m / d.purchases)));
        out.push((format!("Kafka fetched {group}"), format!("{topic}: {} records{b}", n(records / d.purchases))));
    }

    // Redis commands, most frequent first.
    let mut redis = d.under("redis");
    redis.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: f64 = redis.iter().map(|(_, v)| v).sum();
    out.push((
        "Redis commands".into(),
        format!(
            "{} ({})",
            n(total / d.purchases),
            redis.iter().map(|(c, v)| format!("{c} {}", n(v / d.purchases))).collect::<Vec<_>>().join(", ")
        ),
    ));
    out.push((
        "HTTP between services".into(),
        "0 (one process: order, payment, sale and the operator call each other in-process)".into(),
    ));

    // CPU, per process, in ms.
    let tck = after.get("clk_tck").max(1.0);
    let mut cpu: Vec<(String, f64)> =
        d.under("cpu").into_iter().map(|(p, ticks)| (p, ticks / tck * 1000.0 / d.purchases)).collect();
    let generator = after.get("generator_seconds");
    if generator > 0.0 {
        cpu.push(("load generator".into(), generator * 1000.0 / d.purchases));
    }
    let all: f64 = cpu.iter().map(|(_, v)| v).sum();
    out.push((
        "CPU (ms)".into(),
        format!(
            "{all:.3} ms in all: {}",
            cpu.iter().map(|(p, v)| format!("{p} {v:.3}")).collect::<Vec<_>>().join(", ")
        ),
    ));
    out.push(("CPU per purchase, all processes".into(), format!("{all:.3} ms")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_divided_by_the_purchases_per_schema_topic_and_process() {
        let before = Snapshot::parse(
            "time 100\nclk_tck 100\nstatus Com_commit 10\nstatus Innodb_data_fsyncs 5\n\
             statements bench_order Execute 10\nquery order order.insert_batch 5\nrows bench_order insert 10\n\
             cpu goodsmall 1000\ncpu mariadb 500\n\
             kafka produced order.created 40\nkafka bytes order.created 4000\n\
             kafka consumed payment order.created 30\n",
        );
        let after = Snapshot::parse(
            "time 110\nclk_tck 100\nstatus Com_commit 210\nstatus Innodb_data_fsyncs 55\n\
             statements\tbench_order\tExecute\t210\nstatements bench_order commit 100\nstatements bench_order Ping 50\n\
             statements bench_payment Execute 100\nquery order order.insert_batch 30\n\
             rows bench_order insert 210\nrows bench_order delete 100\nrows bench_payment insert 100\n\
             redis evalsha 100\nredis xadd 50\ncpu goodsmall 1020\ncpu mariadb 510\ngenerator_seconds 0.1\n\
             kafka produced order.created 140\nkafka bytes order.created 24000\n\
             kafka consumed payment order.created 130\n",
        );
        let lines: BTreeMap<String, String> = lines(&before, &after, 100).into_iter().collect();
        assert_eq!(
            lines["SQL bench_order"],
            "3.00 statements (Execute 2.00, commit 1.00) + 0.50 pings; \
             rows written 3.00 (insert 2.00, update 0, delete 1.00)"
        );
        assert_eq!(lines["  the shop's order queries"], "order.insert_batch 0.25");
        assert_eq!(
            lines["SQL bench_payment"],
            "1.00 statements (Execute 1.00) + 0 pings; rows written 1.00 (insert 1.00, update 0, delete 0)"
        );
        assert_eq!(lines["commits"], "Com_commit 2.00, Handler_commit 0");
        assert!(lines["fsyncs"].starts_with("Innodb_data_fsyncs 0.50,"), "{}", lines["fsyncs"]);
        assert_eq!(lines["Kafka produced order.created"], "1.00 records, 200 B on the log");
        assert_eq!(lines["Kafka fetched payment"], "order.created: 1.00 records, ≈200 B");
        assert_eq!(lines["Redis commands"], "1.50 (evalsha 1.00, xadd 0.50)");
        assert_eq!(lines["CPU (ms)"], "4.000 ms in all: goodsmall 2.000, mariadb 1.000, load generator 1.000");
        assert_eq!(lines["CPU per purchase, all processes"], "4.000 ms");
        assert!(lines["purchases"].starts_with("100 accepted; counted over 10.0 s"));
    }
}
