//! Faults in the middle of a drop, each service its own process on MariaDB, Redis and
//! Apache Kafka: a service killed and restarted, a replica of each service killed while
//! the consumer groups share the partitions, the broker killed and restarted, MariaDB
//! down, Redis flushed or killed and restarted empty. After every one: nothing a shopper
//! was told is lost, nothing is oversold, and every order ends terminal (see
//! `harness::assert_nothing_lost_nothing_oversold`).

mod broker_crash;
mod database_outage;
mod harness;
mod rebalance;
mod redis_loss;
mod service_crash;
