//! Knowing when a shop's consumers have caught up: every consumer group of a Kafka
//! namespace has committed offsets up to the end of every partition of the topics it
//! reads. Offsets are committed only after the handler succeeded, so a group that has
//! caught up has acted on every event published before the check.

use std::time::{Duration, Instant};

use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    ClientConfig, Offset, TopicPartitionList,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until every consumer group named `<namespace>.*` has consumed everything in the
/// `<namespace>.*` topics it reads (a topic it has committed at least one offset on).
/// Panics after `patience`, naming the groups and partitions still behind.
pub async fn wait_until_consumed(brokers: &str, namespace: &str, patience: Duration) {
    let started = Instant::now();
    loop {
        let (brokers, namespace) = (brokers.to_owned(), namespace.to_owned());
        let behind = tokio::task::spawn_blocking(move || behind(&brokers, &namespace)).await.expect("the offset check");
        match behind {
            Ok(behind) if behind.is_empty() => return,
            Ok(behind) => assert!(started.elapsed() < patience, "consumers still behind after {patience:?}: {behind:?}"),
            Err(e) => assert!(started.elapsed() < patience, "cannot read consumer offsets after {patience:?}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `group topic[partition] committed/end` for every partition a group is behind on.
fn behind(brokers: &str, namespace: &str) -> Result<Vec<String>, rdkafka::error::KafkaError> {
    let prefix = format!("{namespace}.");
    let admin: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let metadata = admin.fetch_metadata(None, REQUEST_TIMEOUT)?;
    let mut ends = Vec::new();
    for topic in metadata.topics().iter().filter(|t| t.name().starts_with(&prefix)) {
        for partition in topic.partitions() {
            let (_, high) = admin.fetch_watermarks(topic.name(), partition.id(), REQUEST_TIMEOUT)?;
            ends.push((topic.name().to_owned(), partition.id(), high));
        }
    }
    let groups = admin.fetch_group_list(None, REQUEST_TIMEOUT)?;
    let mut behind = Vec::new();
    for group in groups.groups().iter().filter(|g| g.name().starts_with(&prefix)) {
        let member: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group.name()).create()?;
        let mut wanted = TopicPartitionList::new();
        for (topic, partition, _) in &ends {
            wanted.add_partition(topic, *partition);
        }
        let committed = member.committed_offsets(wanted, REQUEST_TIMEOUT)?;
        let offset_of = |topic: &str, partition: i32| match committed.find_partition(topic, partition).map(|p| p.offset()) {
            Some(Offset::Offset(n)) => Some(n),
            _ => None,
        };
        let reads = |topic: &str| ends.iter().any(|(t, p, _)| t == topic && offset_of(t, *p).is_some());
        for (topic, partition, high) in &ends {
            let done = offset_of(topic, *partition).unwrap_or(0);
            if reads(topic) && done < *high {
                behind.push(format!("{} {topic}[{partition}] {done}/{high}", group.name()));
            }
        }
    }
    Ok(behind)
}
