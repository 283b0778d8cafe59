//! Accounts: the `users` table, with personal fields encrypted on the way in and
//! decrypted on the way out. Nothing else touches those columns.

use goodsmall_platform::{
    auth::Role,
    clock::{now_millis, to_datetime, TimeOutOfRange},
    db::{is_unique_violation, Database},
};
use serde::Serialize;
use sqlx::{any::AnyRow, Row};
use utoipa::ToSchema;

use crate::{
    crypto::{CryptoError, FieldCipher, PasswordHasherConfig},
    domain::{Address, Email, Password, PersonName, Phone},
};

pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub name: PersonName,
    pub phone: Phone,
    pub address: Address,
    pub role: Role,
}

/// An account as the owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub phone: String,
    pub address: String,
    pub role: Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What login needs.
pub struct Credentials {
    pub id: i64,
    pub role: Role,
    pub password_hash: String,
}

/// What the accounts store can fail with; the HTTP answer of each is in `routes/mod.rs`.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    #[error("accounts: the database failed")]
    Database(#[from] sqlx::Error),
    #[error("accounts: a password or a personal field")]
    Crypto(#[from] CryptoError),
    #[error("account {user_id}")]
    CorruptTime {
        user_id: i64,
        #[source]
        source: TimeOutOfRange,
    },
}

/// The `role` column of a `users` row. A role this code does not know (a newer
/// release's, a hand edit) fails to decode, with the value in the error: it must not
/// pass for a shopper, nor for anything else.
pub(crate) fn stored_role(row: &AnyRow) -> Result<Role, sqlx::Error> {
    let stored: String = row.try_get("role")?;
    Role::parse(&stored)
        .map_err(|unknown| sqlx::Error::ColumnDecode { index: "role".into(), source: Box::new(unknown) })
}

#[derive(Clone)]
pub struct Accounts {
    db: Database,
    cipher: FieldCipher,
    hasher: PasswordHasherConfig,
    /// Verified against when there is no account, so login timing does not reveal
    /// which e-mails have one.
    dummy_hash: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

#[derive(Default)]
pub struct ProfileChanges {
    pub name: Option<PersonName>,
    pub phone: Option<Phone>,
    pub address: Option<Address>,
}

impl Accounts {
    pub fn new(db: Database, cipher: FieldCipher, hasher: PasswordHasherConfig) -> Self {
        Self { db, cipher, hasher, dummy_hash: Default::default() }
    }

    /// Checks a password against the stored hash, or against a dummy when `None`.
    pub async fn verify_password(&self, password: String, stored: Option<String>) -> Result<bool, AccountError> {
        let exists = stored.is_some();
        let hash = match stored {
            Some(hash) => hash,
            None => self.dummy_hash.get_or_try_init(|| self.hasher.hash("dummy password 0".into())).await?.clone(),
        };
        Ok(self.hasher.verify(password, hash).await? && exists)
    }

    pub async fn create(&self, account: NewAccount) -> Result<i64, AccountError> {
        let password_hash = self.hasher.hash(account.password.expose().to_owned()).await?;
        let now = now_millis();
        let c = &self.cipher;
        let _q = self.db.observe("user.insert");
        let sql = self.db.insert_sql(
            "INSERT INTO users \
             (email_hash, email_enc, name_enc, phone_enc, address_enc, password_hash, role, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(c.lookup_hash(account.email.as_str()))
            .bind(c.encrypt(account.email.as_str()))
            .bind(c.encrypt(account.name.as_str()))
            .bind(c.encrypt(account.phone.as_str()))
            .bind(c.encrypt(account.address.as_str()))
            .bind(password_hash)
            .bind(account.role.as_str())
            .bind(now)
            .bind(now);
        match self.db.insert_id(query).await {
            Ok(id) => Ok(id),
            Err(e) if is_unique_violation(&e) => Err(AccountError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, sqlx::Error> {
        let _q = self.db.observe("user.find_by_email");
        let row = sqlx::query("SELECT id, role, password_hash FROM users WHERE email_hash = ?")
            .bind(self.cipher.lookup_hash(email.as_str()))
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| {
            Ok(Credentials { id: r.try_get("id")?, role: stored_role(&r)?, password_hash: r.try_get("password_hash")? })
        })
        .transpose()
    }

    pub async fn password_hash(&self, user_id: i64) -> Result<Option<String>, sqlx::Error> {
        let _q = self.db.observe("user.password_hash");
        sqlx::query("SELECT password_hash FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.try_get("password_hash"))
            .transpose()
    }

    pub async fn profile(&self, user_id: i64) -> Result<Option<Profile>, AccountError> {
        let _q = self.db.observe("user.find_by_id");
        let row = sqlx::query(
            "SELECT id, email_enc, name_enc, phone_enc, address_enc, role, created_at FROM users WHERE id = ?",
        )
        .bind(user_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| self.decrypt_profile(&r)).transpose()
    }

    fn decrypt_profile(&self, r: &AnyRow) -> Result<Profile, AccountError> {
        let field = |column: &str| -> Result<String, AccountError> {
            Ok(self.cipher.decrypt(&r.try_get::<String, _>(column)?)?)
        };
        let id = r.try_get("id")?;
        let created_at = r.try_get("created_at")?;
        Ok(Profile {
            id,
            email: field("email_enc")?,
            name: field("name_enc")?,
            phone: field("phone_enc")?,
            address: field("address_enc")?,
            role: stored_role(r)?,
            created_at: to_datetime(created_at).map_err(|source| AccountError::CorruptTime { user_id: id, source })?,
        })
    }

    /// Applies the given changes; `false` when the account does not exist.
    pub async fn update_profile(&self, user_id: i64, changes: ProfileChanges) -> Result<bool, sqlx::Error> {
        let c = &self.cipher;
        let _q = self.db.observe("user.update_profile");
        // COALESCE keeps a column whose new value is NULL (not given).
        let done = sqlx::query(
            "UPDATE users SET name_enc = COALESCE(?, name_enc), phone_enc = COALESCE(?, phone_enc), \
             address_enc = COALESCE(?, address_enc), updated_at = ? WHERE id = ?",
        )
        .bind(changes.name.map(|v| c.encrypt(v.as_str())))
        .bind(changes.phone.map(|v| c.encrypt(v.as_str())))
        .bind(changes.address.map(|v| c.encrypt(v.as_str())))
        .bind(now_millis())
        .bind(user_id)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_password(&self, user_id: i64, password: &Password) -> Result<(), AccountError> {
        let hash = self.hasher.hash(password.expose().to_owned()).await?;
        let _q = self.db.observe("user.set_password");
        sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(hash)
            .bind(now_millis())
            .bind(user_id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn role_row(role: &str) -> AnyRow {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect("sqlite::memory:").await.unwrap();
        sqlx::query("SELECT ? AS role").bind(role.to_owned()).fetch_one(&pool).await.unwrap()
    }

    #[tokio::test]
    async fn a_stored_role_reads_back_as_itself_and_an_unknown_one_is_an_error() {
        for role in [Role::Shopper, Role::Merchant, Role::Admin] {
            assert_eq!(stored_role(&role_row(role.as_str()).await).unwrap(), role);
        }
        let error = stored_role(&role_row("superuser").await).expect_err("an unknown role is not a shopper");
        let cause =
            std::error::Error::source(&error).and_then(|e| e.downcast_ref::<goodsmall_platform::auth::UnknownRole>());
        assert_eq!(cause, Some(&goodsmall_platform::auth::UnknownRole("superuser".into())), "{error}");
    }
}
