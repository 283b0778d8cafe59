//! `goodsmall-bench`: the Rust side of `scripts/bench.sh`.
//!
//! - `prepare` mints access tokens for N synthetic shoppers (and a merchant) with the
//!   shop's private key, creates a product and a flash sale through the API, writes the
//!   shopper tokens as a JSON array for k6 and prints the sale id.
//! - `verify` reads a sale's live counters and fails on any oversell (units taken
//!   beyond the stock) or broken conservation (`stock = remaining + reserved + sold`).
//! - `report` reads what k6, redis-benchmark and `verify` wrote and prints the summary
//!   block; it fails when anything was oversold, answered 5xx, or the drop sold other
//!   than its stock.
//! - `load` runs the throughput scenario from a lean Rust client (k6 costs as much
//!   CPU per purchase as the shop on a 2-core box) and writes its figures for `report`.
//! - `profile` shows where the server's time went between two `/metrics` snapshots.
//! - `bare` serves the yardstick of the sold-out path: a handler that parses a
//!   purchase and verifies its token, nothing else.
//! - `burst` opens N new connections at the same instant (a drop's opening) and
//!   reports how long each took to be answered, how many were not, and the kernel's
//!   listen-queue overflows meanwhile.
//! - `spike` sends a drop's opening at a sale, open loop (N shoppers over 2 s), and
//!   `pay` pays the orders it got (the simulated PSP declines its share).
//! - `join` puts every shopper in a sale's waiting room (for the poll path's figures).
//! - `kafka-offsets` prints the broker's records per topic and per consumer group, for
//!   the ledger per purchase (`report --ledger-before/--ledger-after`).

mod bare;
mod burst;
mod crowd;
mod kafka;
mod ledger;
mod load;
mod prepare;
mod profile;
mod queue;
mod report;
mod spike;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// The shop's allocator, so that `bare` (the yardstick) allocates as the shop does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Prepares, checks and reports GoodsMall load tests (see scripts/bench.sh)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Mint shopper tokens, create a product and an open sale; prints the sale id.
    Prepare(prepare::PrepareArgs),
    /// Check a sale's counters: no oversell, conservation holds (exit 1 otherwise).
    Verify(verify::VerifyArgs),
    /// Buy in a closed loop from CONCURRENCY workers for a while; print and write the
    /// rate and latency (the throughput scenario without k6's CPU cost).
    Load(load::LoadArgs),
    /// Print the summary block from the results of a bench run (exit 1 on oversell,
    /// 5xx, or a drop that did not sell exactly its stock).
    Report(report::ReportArgs),
    /// Where the server's time went: the latency histograms that moved between two
    /// `/metrics` snapshots, by total time.
    Profile(profile::ProfileArgs),
    /// Serve a bare purchase handler (parse, verify the token, answer SOLD_OUT) and print
    /// its address: what the shop's sold-out path is measured against.
    Bare(bare::BareArgs),
    /// Open N new connections at once, each asking `GET /healthz`: p50/p99 of
    /// connect+answer, how many got no answer, and the kernel's ListenOverflows delta.
    Burst(burst::BurstArgs),
    /// A drop's opening, open loop: each shopper buys once at their own moment, evenly
    /// spread over --over-millis from --opens-at; accepted orders go to --orders-out.
    Spike(spike::SpikeArgs),
    /// Every shopper joins a sale's waiting room; waits for the opening (then measure
    /// the poll path with `load --poll`).
    Join(queue::JoinArgs),
    /// Pay the orders a spike got, each with its buyer's token.
    Pay(spike::PayArgs),
    /// Records per topic and per consumer group on a Kafka broker (ledger snapshot lines).
    KafkaOffsets(kafka::KafkaOffsetsArgs),
    /// Mint tokens only (no HTTP): shoppers from `--first-id`, as a JSON array.
    Tokens {
        #[command(flatten)]
        key: prepare::KeyArgs,
        #[arg(long, default_value_t = 110)]
        shoppers: usize,
        #[arg(long, default_value_t = 1_000_000)]
        first_id: i64,
        #[arg(long)]
        out: PathBuf,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let outcome = match Cli::parse().command {
        Command::Prepare(args) => prepare::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Load(args) => load::run(args).await,
        Command::Report(args) => report::run(args),
        Command::Profile(args) => profile::run(args),
        Command::Bare(args) => bare::run(args).await,
        Command::Burst(args) => burst::run(args).await,
        Command::Spike(args) => spike::run(args).await,
        Command::Pay(args) => spike::pay(args).await,
        Command::Join(args) => queue::run(args).await,
        Command::KafkaOffsets(args) => kafka::run(args),
        Command::Tokens { key, shoppers, first_id, out } => {
            prepare::write_shopper_tokens(&key, shoppers, first_id, &out)
        }
    };
    match outcome {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("goodsmall-bench: {e:#}");
            std::process::exit(2);
        }
    }
}
