//! `kafka-offsets`: what the broker holds, for the ledger: per topic the records written
//! (the sum of its partitions' high watermarks) and per consumer group and topic the
//! records consumed (the sum of the group's committed offsets). Two snapshots apart,
//! the differences are the records produced and fetched in between.
//!
//! One line each, `kafka produced TOPIC RECORDS` and `kafka consumed GROUP TOPIC RECORDS`,
//! in the ledger snapshot's format (the last field is the value).

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    ClientConfig, Offset, TopicPartitionList,
};

#[derive(Args)]
pub struct KafkaOffsetsArgs {
    /// The broker, host:port.
    #[arg(long)]
    pub brokers: String,
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn consumer(brokers: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .context("creating a Kafka client")
}

pub fn run(args: KafkaOffsetsArgs) -> anyhow::Result<bool> {
    // Only reads metadata and offsets: this group is never joined.
    let client = consumer(&args.brokers, "goodsmall-bench-offsets")?;
    let metadata = client.fetch_metadata(None, TIMEOUT).context("reading the broker's metadata")?;
    let mut partitions = TopicPartitionList::new();
    let mut topics: Vec<(String, i64)> = Vec::new();
    for topic in metadata.topics() {
        let mut written = 0;
        for p in topic.partitions() {
            let (_low, high) = client.fetch_watermarks(topic.name(), p.id(), TIMEOUT)?;
            written += high;
            if !topic.name().starts_with("__") {
                partitions.add_partition(topic.name(), p.id());
            }
        }
        topics.push((topic.name().to_owned(), written));
    }
    topics.sort();
    for (topic, written) in &topics {
        println!("kafka produced {topic} {written}");
    }
    let groups = client.fetch_group_list(None, TIMEOUT).context("listing the consumer groups")?;
    let mut names: Vec<String> = groups.groups().iter().map(|g| g.name().to_owned()).collect();
    names.sort();
    for group in names {
        let committed = consumer(&args.brokers, &group)?.committed_offsets(partitions.clone(), TIMEOUT)?;
        let mut per_topic: std::collections::BTreeMap<String, i64> = Default::default();
        for e in committed.elements() {
            if let Offset::Offset(n) = e.offset() {
                *per_topic.entry(e.topic().to_owned()).or_default() += n;
            }
        }
        for (topic, n) in per_topic {
            println!("kafka consumed {group} {topic} {n}");
        }
    }
    Ok(true)
}
