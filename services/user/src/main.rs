//! `goodsmall-user`: the user service on its own (MySQL + Redis), plus admin commands.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use goodsmall_platform::{
    auth::{KeyPair, Role},
    configuration::Settings,
    db::Database,
    http::shutdown_on_signal,
    metrics::Metrics,
    telemetry,
};
use goodsmall_user::{
    configuration::{BootstrapAccount, ServiceConfig},
    startup,
};

#[derive(Parser)]
#[command(version, about = "GoodsMall user service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Print a new Ed25519 key pair for signing (user service) and verifying (all services) access tokens.
    Keygen,
    /// Create a merchant or admin account. The password is read from standard input
    /// (`--password-stdin`, e.g. through `kubectl exec -i`) or GOODSMALL_NEW_ACCOUNT_PASSWORD;
    /// never from the command line, where the process list and exec request logs show it.
    CreateAccount {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["merchant", "admin"], default_value = "merchant")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// The new account's password: stdin's first line, or GOODSMALL_NEW_ACCOUNT_PASSWORD.
fn new_account_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        std::env::var("GOODSMALL_NEW_ACCOUNT_PASSWORD").map_err(|_| {
            anyhow::anyhow!("no password: pipe it in with --password-stdin, or set GOODSMALL_NEW_ACCOUNT_PASSWORD")
        })?
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    Ok(password)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Keygen) = cli.command {
        let pair = KeyPair::generate();
        println!("# GOODSMALL_AUTH__PRIVATE_KEY_PEM (user service only)\n{}", pair.private_pem);
        println!("# GOODSMALL_AUTH__PUBLIC_KEY_PEM (every service)\n{}", pair.public_pem);
        return Ok(());
    }
    let config = ServiceConfig::load().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    telemetry::init(&config.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let running = startup::application(&config, shutdown_on_signal()).await?;
            tracing::info!(address = %running.local_addr(), "user service listening");
            running.run().await
        }
        Command::CreateAccount { email, name, role, password_stdin } => {
            let password = new_account_password(password_stdin)?;
            let database =
                Database::connect("user", &config.user.database, &startup::migrations(), &Metrics::new()).await?;
            let accounts = startup::accounts(&config.user, database)?;
            let role = Role::parse(&role).unwrap_or(Role::Merchant);
            let account = BootstrapAccount { email: email.clone(), password: password.into(), name };
            let created = startup::bootstrap(&accounts, &account, role).await?;
            println!(
                "{}",
                if created {
                    format!("created {} account {email}", role.as_str())
                } else {
                    format!("{email} already has an account")
                }
            );
            Ok(())
        }
        Command::Keygen => unreachable!("handled above"),
    }
}
