//! `goodsmall-user`: the user service on its own (MySQL + Redis), plus admin commands.

use clap::{Parser, Subcommand};
use goodsmall_platform::{
    auth::{Authenticator, KeyPair, KeySettings, Role},
    configuration::{self, ConfigError, HttpSettings, RedisSettings},
    db::Database,
    http::shutdown_on_signal,
    kv::Kv,
    metrics::Metrics,
    service::{RunningService, Shared},
    telemetry::{self, LogSettings},
};
use goodsmall_user::{
    configuration::{BootstrapAccount, UserSettings},
    startup,
};
use serde::Deserialize;

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

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    http: HttpSettings,
    #[serde(default)]
    log: LogSettings,
    redis: RedisSettings,
    auth: KeySettings,
    user: UserSettings,
}

impl Config {
    fn load() -> Result<Self, ConfigError> {
        let config: Self = configuration::load()?;
        config.http.validate()?;
        config.redis.validate("redis")?;
        config.user.validate("user")?;
        config.auth.private_key("auth")?;
        config.auth.public_key("auth")?;
        Ok(config)
    }
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
    let config = Config::load().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    telemetry::init(&config.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::CreateAccount { email, name, role, password } => {
            let metrics = Metrics::new();
            let database = Database::connect("user", &config.user.database, &startup::migrations(), &metrics).await?;
            let accounts = startup::accounts(&config.user, database)?;
            let role = Role::parse(&role).unwrap_or(Role::Merchant);
            let created = startup::bootstrap(&accounts, &BootstrapAccount { email: email.clone(), password, name }, role).await?;
            println!("{}", if created { format!("created {} account {email}", role.as_str()) } else { format!("{email} already has an account") });
            Ok(())
        }
        Command::Keygen => unreachable!("handled above"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let kv = Kv::redis(&config.redis.url).await?.with_metrics(metrics.clone());
    let issuer = config.auth.issuer();
    let authenticator = Authenticator::new(&config.auth.public_key("auth")?, &issuer, kv.clone())?;
    let shared = Shared { metrics, kv, authenticator, shutdown: shutdown_on_signal() };
    let service = startup::build(&config.user, &config.auth.private_key("auth")?, issuer, &shared).await?;
    let running = RunningService::bind("GoodsMall user service", &config.http, service.parts, &shared).await?;
    tracing::info!(address = %running.local_addr(), "user service listening");
    running.run().await
}
