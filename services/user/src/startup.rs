//! Builds the user service from its settings and the process-wide parts.

use std::time::Duration;

use goodsmall_platform::{
    auth::{Authenticator, Role, TokenSigner},
    configuration::ExposeSecret,
    db::{Database, Migrations},
    kv::Kv,
    metrics::Metrics,
    service::{RunningService, ServiceParts, Shared},
};
use tokio_util::sync::CancellationToken;

use crate::{
    accounts::{AccountError, Accounts, NewAccount},
    configuration::{BootstrapAccount, ServiceConfig, UserSettings},
    crypto::{FieldCipher, PasswordHasherConfig},
    domain::{Address, Email, Password, PersonName, Phone},
    login_throttle::LoginThrottle,
    mail::{run_delivery_worker, MailOutbox, MailTransport},
    revocations::Revocations,
    routes,
    sessions::Sessions,
    state::UserState,
    verification::Verifications,
};

pub fn migrations() -> Migrations {
    Migrations { mysql: sqlx::migrate!("./migrations/mysql"), sqlite: sqlx::migrate!("./migrations/sqlite") }
}

/// The user service, built: its parts for a server, and handles for tools and tests.
pub struct UserService {
    pub parts: ServiceParts,
    pub accounts: Accounts,
    pub database: Database,
}

pub async fn build(
    settings: &UserSettings,
    private_key_pem: &str,
    issuer: String,
    shared: &Shared,
) -> anyhow::Result<UserService> {
    let database = Database::connect("user", &settings.database, &migrations(), &shared.metrics).await?;
    let accounts = accounts(settings, database.clone())?;
    if let Some(admin) = &settings.bootstrap_admin {
        bootstrap(&accounts, admin, Role::Admin).await?;
    }
    let cipher = FieldCipher::new(&settings.data_key_bytes("user")?);
    let signer = TokenSigner::new(private_key_pem, issuer, settings.access_ttl())?;
    let transport = MailTransport::from_settings(&settings.mail)?;
    // Before the service answers: a store that lost its keys gets the logged-out
    // sessions back from the database.
    let revocations = Revocations::new(database.clone(), shared.kv.clone(), settings.access_ttl());
    revocations.reload_if_needed().await?;
    let outbox = MailOutbox::new(database.clone(), settings.mail.max_attempts)?;
    let state = UserState {
        accounts: accounts.clone(),
        verifications: Verifications::new(shared.kv.clone(), cipher.clone(), settings.verification.clone()),
        sessions: Sessions::new(
            database.clone(),
            revocations.clone(),
            signer,
            Duration::from_secs(settings.tokens.refresh_ttl_secs),
        ),
        outbox: outbox.clone(),
        login_throttle: LoginThrottle::new(shared.kv.clone(), cipher, settings.login.clone()),
        authenticator: shared.authenticator.clone(),
        dev_mailbox: transport.dev_mailbox(),
    };
    let worker = tokio::spawn(run_delivery_worker(outbox, transport, shared.shutdown.clone()));
    let keeper = revocations.spawn_keeper(shared.shutdown.clone());
    let parts = ServiceParts {
        api: routes::router(state),
        readiness: shared.readiness(&database),
        workers: vec![worker, keeper],
    };
    Ok(UserService { parts, accounts, database })
}

/// The account store alone (for the command line).
pub fn accounts(settings: &UserSettings, database: Database) -> anyhow::Result<Accounts> {
    let cipher = FieldCipher::new(&settings.data_key_bytes("user")?);
    Ok(Accounts::new(database, cipher, PasswordHasherConfig::new(&settings.password_hashing)?))
}

/// Creates a privileged account unless one with this e-mail exists; `true` if created.
pub async fn bootstrap(accounts: &Accounts, account: &BootstrapAccount, role: Role) -> anyhow::Result<bool> {
    fn parse<T>(what: &str, r: Result<T, String>) -> anyhow::Result<T> {
        r.map_err(|e| anyhow::anyhow!("{what} {e}"))
    }
    let new = NewAccount {
        email: parse("e-mail", Email::parse(&account.email))?,
        password: parse("password", Password::parse(account.password.expose_secret()))?,
        name: parse("name", PersonName::parse(&account.name))?,
        phone: Phone::parse("+00 0000000").map_err(anyhow::Error::msg)?,
        address: Address::parse("(not given)").map_err(anyhow::Error::msg)?,
        role,
    };
    match accounts.create(new).await {
        Ok(id) => {
            tracing::info!(user_id = id, role = role.as_str(), "account created");
            Ok(true)
        }
        Err(AccountError::EmailTaken) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The standalone service: Redis, its own database, its own port.
pub async fn application(config: &ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let metrics = Metrics::new();
    let kv = Kv::redis(config.redis.url.expose_secret()).await?.with_metrics(metrics.clone());
    let issuer = config.auth.issuer();
    let authenticator = Authenticator::new(&config.auth.public_key("auth")?, &issuer, kv.clone())?;
    let shared = Shared { metrics, kv, authenticator, shutdown };
    let service = build(&config.user, config.auth.private_key("auth")?.expose_secret(), issuer, &shared).await?;
    RunningService::bind_separate(&config.http, service.parts, &shared).await
}
