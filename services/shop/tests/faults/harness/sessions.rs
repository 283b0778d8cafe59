//! Sessions ended before a fault, by a logout and by a password change: whatever the
//! fault did to the store where every service checks revocations, their tokens must stay
//! refused, and a session opened after them must work again once the store is back.

use reqwest::StatusCode;
use serde_json::json;

use super::{Service, Stack};

const ADMIN: &str = "fault-admin@example.com";
const PASSWORD: &str = "fault-admin-pass-1";
const NEW_PASSWORD: &str = "fault-admin-pass-2";

/// The user service of the stack (not started yet): an admin to log in as.
pub async fn user_service(stack: &Stack) -> Service {
    let database = goodsmall_testkit::mysql_url("fault_user").await;
    let admin = [
        ("GOODSMALL_USER__BOOTSTRAP_ADMIN__EMAIL", ADMIN),
        ("GOODSMALL_USER__BOOTSTRAP_ADMIN__PASSWORD", PASSWORD),
        ("GOODSMALL_USER__BOOTSTRAP_ADMIN__NAME", "Fault Admin"),
    ];
    Service::user_service(
        &stack.redis,
        &database,
        (&stack.keys.private_pem, &stack.keys.public_pem),
        &admin,
        &stack.logs.join("user.log"),
    )
}

pub struct Sessions {
    /// Logged out, or ended by the password change.
    pub revoked: Vec<String>,
    /// Opened after them, with the new password.
    pub live: String,
}

/// What one round of probes was answered.
#[derive(Debug, Default, Clone, Copy)]
pub struct Probed {
    pub revoked_refused: usize,
    /// 503 while the store gets the revocations back (revoked or live tokens).
    pub unavailable: usize,
    pub live_accepted: usize,
}

impl Sessions {
    /// The admin logs in three times, logs one session out, changes the password from
    /// another (which ends every session of the account), and logs in again.
    pub async fn open(stack: &Stack) -> Sessions {
        let tokens = [login(stack, PASSWORD).await, login(stack, PASSWORD).await, login(stack, PASSWORD).await];
        let logout = stack
            .client
            .post(format!("{}/api/auth/logout", stack.user.base()))
            .bearer_auth(&tokens[0])
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
        let change = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
        let changed = stack
            .client
            .put(format!("{}/api/users/me/password", stack.user.base()))
            .bearer_auth(&tokens[1])
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), StatusCode::NO_CONTENT);
        Sessions { revoked: tokens.to_vec(), live: login(stack, NEW_PASSWORD).await }
    }

    /// Every token once on one route of the user, product and order services. A revoked
    /// token is never accepted: 401 `TOKEN_REVOKED`, or 503 with `Retry-After` while the
    /// store gets the revocations back.
    pub async fn probe(&self, stack: &Stack, order_base: &str) -> Probed {
        let mut probed = Probed::default();
        let urls = [
            format!("{}/api/users/me", stack.user.base()),
            format!("{}/api/cart", stack.product.base()),
            format!("{order_base}/api/orders"),
        ];
        for url in &urls {
            for (token, revoked) in self.revoked.iter().map(|t| (t, true)).chain([(&self.live, false)]) {
                let response = stack.client.get(url).bearer_auth(token).send().await.unwrap();
                let status = response.status();
                let retry_after = response.headers().contains_key("retry-after");
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                match (status, revoked) {
                    (StatusCode::SERVICE_UNAVAILABLE, _) => {
                        assert!(retry_after, "{url}: a 503 without Retry-After: {body}");
                        probed.unavailable += 1;
                    }
                    (StatusCode::UNAUTHORIZED, true) => {
                        assert_eq!(body["code"], "TOKEN_REVOKED", "{url}: {body}");
                        probed.revoked_refused += 1;
                    }
                    (StatusCode::OK, false) => probed.live_accepted += 1,
                    _ => panic!(
                        "{url}: a {} token was answered {status}: {body}",
                        if revoked { "revoked" } else { "live" }
                    ),
                }
            }
        }
        probed
    }
}

async fn login(stack: &Stack, password: &str) -> String {
    let response = stack
        .client
        .post(format!("{}/api/auth/login", stack.user.base()))
        .json(&json!({ "email": ADMIN, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}
