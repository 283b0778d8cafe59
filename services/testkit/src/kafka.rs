//! Knowing when a shop's consumers have caught up: every consumer group of a Kafka
//! namespace has committed offsets up to the end of every partition of the topics it
//! reads. Offsets are committed only after the handler succeeded, so a group that has
//! caught up has acted on every event published before the check. The topics a group
//! reads are those its live members subscribe to (from the group's member metadata),
//! plus any it has committed on, so a group that has not committed yet is waited for.

use std::time::{Duration, Instant};

use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    ClientConfig, Offset, TopicPartitionList,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until every consumer group named `<namespace>.*` has consumed everything in the
/// `<namespace>.*` topics it reads (subscribes to, or has committed an offset on).
/// Panics after `patience`, naming the groups and partitions still behind.
pub async fn wait_until_consumed(brokers: &str, namespace: &str, patience: Duration) {
    let started = Instant::now();
    loop {
        let (brokers, namespace) = (brokers.to_owned(), namespace.to_owned());
        let behind = tokio::task::spawn_blocking(move || behind(&brokers, &namespace)).await.expect("the offset check");
        match behind {
            Ok(behind) if behind.is_empty() => return,
            Ok(behind) => {
                assert!(started.elapsed() < patience, "consumers still behind after {patience:?}: {behind:?}")
            }
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
        let offset_of =
            |topic: &str, partition: i32| match committed.find_partition(topic, partition).map(|p| p.offset()) {
                Some(Offset::Offset(n)) => Some(n),
                _ => None,
            };
        let subscribed: Vec<String> =
            group.members().iter().flat_map(|m| m.metadata().map(subscribed_topics).unwrap_or_default()).collect();
        let reads = |topic: &str| {
            subscribed.iter().any(|t| t == topic)
                || ends.iter().any(|(t, p, _)| t == topic && offset_of(t, *p).is_some())
        };
        for (topic, partition, high) in &ends {
            let done = offset_of(topic, *partition).unwrap_or(0);
            if reads(topic) && done < *high {
                behind.push(format!("{} {topic}[{partition}] {done}/{high}", group.name()));
            }
        }
    }
    Ok(behind)
}

/// The topics in a classic consumer-protocol subscription (a member's metadata):
/// `version: i16, topics: [len: i16, name]` (KIP-62 layout; later versions only append).
fn subscribed_topics(metadata: &[u8]) -> Vec<String> {
    let mut topics = Vec::new();
    let read_i16 = |at: usize| metadata.get(at..at + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let Some(count) = metadata.get(2..6).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { return topics };
    let mut at = 6;
    for _ in 0..count.max(0) {
        let Some(len) = read_i16(at) else { break };
        let Some(name) = metadata.get(at + 2..at + 2 + len.max(0) as usize) else { break };
        topics.push(String::from_utf8_lossy(name).into_owned());
        at += 2 + len.max(0) as usize;
    }
    topics
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_subscription_lists_its_topics() {
        let mut metadata = vec![0, 1, 0, 0, 0, 2];
        for topic in ["ns.orders", "ns.payments"] {
            metadata.extend((topic.len() as i16).to_be_bytes());
            metadata.extend(topic.as_bytes());
        }
        metadata.extend([0, 0, 0, 0]); // user data
        assert_eq!(super::subscribed_topics(&metadata), ["ns.orders", "ns.payments"]);
        assert!(super::subscribed_topics(&[0, 1]).is_empty(), "a short buffer is no subscription");
    }
}
