//! `goodsmall-user`: the user service on its own (MySQL + Redis), plus admin commands.

use clap::{Parser, Subcommand};
use goodsmall_platform::{
    auth::{KeyPair, Role},
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
    /// Create a merchant or admin account. The password is read from GOODSMALL_NEW_ACCOUNT_PASSWORD.
    CreateAccount {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["merchant", "admin"], default_value = "merchant")]
        role: String,
        #[arg(long, env = "GOODSMALL_NEW_ACCOUNT_PASSWORD", hide_env_values = true)]
        password: String,
    },
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
        Command::CreateAccount { email, name, role, password } => {
            let database = Database::connect("user", &config.user.database, &startup::migrations(), &Metrics::new()).await?;
            let accounts = startup::accounts(&config.user, database)?;
            let role = Role::parse(&role).unwrap_or(Role::Merchant);
            let account = BootstrapAccount { email: email.clone(), password: password.into(), name };
            let created = startup::bootstrap(&accounts, &account, role).await?;
            println!("{}", if created { format!("created {} account {email}", role.as_str()) } else { format!("{email} already has an account") });
            Ok(())
        }
        Command::Keygen => unreachable!("handled above"),
    }
}
