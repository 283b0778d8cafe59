use axum::{extract::State, http::StatusCode};
use goodsmall_platform::{
    auth::AuthUser,
    error::{ApiError, ApiResult, ErrorCode, Problem},
    extract::Json,
    http::ClientAddress,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    domain::{Email, FieldErrors},
    mail::OutgoingMail,
    sessions::TokenPair,
    state::UserState,
};

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    #[schema(max_length = 254, example = "fan@example.com")]
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct CodeSent {
    pub email: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

fn parse_email(raw: &str) -> Result<Email, ApiError> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(raw));
    errors.into_result()?;
    Ok(email.expect("checked above"))
}

/// Send a 6-digit verification code to an e-mail address.
///
/// Returns at once; the mail is sent in the background with retries.
#[utoipa::path(post, path = "/api/auth/email-verifications", tag = "auth", request_body = CodeRequest,
    responses((status = 202, body = CodeSent), (status = 422, body = Problem, description = "VALIDATION_FAILED: \
        `email` is not an e-mail address"),
              (status = 429, body = Problem, description = "RESEND_TOO_SOON")))]
pub async fn request_code(
    State(state): State<UserState>,
    Json(body): Json<CodeRequest>,
) -> ApiResult<(StatusCode, Json<CodeSent>)> {
    let email = parse_email(&body.email)?;
    let code = state.verifications.issue(&email).await?;
    let minutes = state.verifications.code_ttl().as_secs() / 60;
    state
        .outbox
        .enqueue(OutgoingMail {
            recipient: email.as_str().to_owned(),
            subject: "Your GoodsMall verification code".into(),
            body: format!(
                "Your GoodsMall verification code is {code}.\nIt expires in {minutes} minutes.\n\nIf you did \
                not ask for it, ignore this mail."
            ),
        })
        .await?;
    let expires_in = state.verifications.code_ttl().as_secs();
    Ok((StatusCode::ACCEPTED, Json(CodeSent { email: email.as_str().to_owned(), expires_in })))
}

#[derive(Deserialize, ToSchema)]
pub struct CodeConfirmation {
    #[schema(max_length = 254, example = "fan@example.com")]
    pub email: String,
    /// The 6-digit code from the mail.
    #[schema(example = "123456")]
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct Verified {
    pub email: String,
    pub verified: bool,
}

/// Confirm the code; the e-mail may then be used to sign up.
#[utoipa::path(post, path = "/api/auth/email-verifications/confirm", tag = "auth", request_body = CodeConfirmation,
    responses((status = 200, body = Verified), (status = 400, body = Problem,
              description = "INVALID_CODE, NO_PENDING_VERIFICATION"),
              (status = 422, body = Problem, description = "VALIDATION_FAILED: `email` is not an e-mail address"),
              (status = 429, body = Problem, description = "VERIFICATION_LOCKED")))]
pub async fn confirm_code(
    State(state): State<UserState>,
    Json(body): Json<CodeConfirmation>,
) -> ApiResult<Json<Verified>> {
    let email = parse_email(&body.email)?;
    state.verifications.confirm(&email, &body.code).await?;
    Ok(Json(Verified { email: email.as_str().to_owned(), verified: true }))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Log in: a short-lived access token and a rotating refresh token.
///
/// Repeated failures for one account from one client address make that address wait
/// (429, `Retry-After`, doubling with each further failure); other addresses, the
/// owner's among them, are not held up.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem, description = "INVALID_CREDENTIALS"),
              (status = 429, body = Problem, description = "TOO_MANY_ATTEMPTS: wait `Retry-After` seconds before \
                  trying again from this address")))]
pub async fn login(
    State(state): State<UserState>,
    ClientAddress(client): ClientAddress,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<TokenPair>> {
    let wrong = || ApiError::new(ErrorCode::InvalidCredentials, "e-mail or password is wrong");
    // A malformed e-mail cannot have an account: same answer as a wrong password.
    let email = Email::parse(&body.email).map_err(|_| wrong())?;
    let attempt = state.login_throttle.admit(&email, client).await?;
    let credentials = state.accounts.credentials(&email).await?;
    let stored = credentials.as_ref().map(|c| c.password_hash.clone());
    let matches = state.accounts.verify_password(body.password, stored).await?;
    match credentials {
        Some(account) if matches => {
            state.login_throttle.succeeded(attempt).await?;
            Ok(Json(state.sessions.start(account.id, account.role).await?))
        }
        _ => {
            state.login_throttle.failed(attempt).await?;
            Err(wrong())
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Trade a refresh token for a new pair. Each refresh token works once; presenting a
/// used one revokes the whole session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem, description = "INVALID_REFRESH_TOKEN, \
        REFRESH_TOKEN_REUSED")))]
pub async fn refresh(State(state): State<UserState>, Json(body): Json<RefreshRequest>) -> ApiResult<Json<TokenPair>> {
    Ok(Json(state.sessions.refresh(&body.refresh_token).await?))
}

/// Log out: this session's access and refresh tokens stop working everywhere.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "logged out"), (status = 401, body = Problem)))]
pub async fn logout(State(state): State<UserState>, user: AuthUser) -> ApiResult<StatusCode> {
    state.sessions.revoke(&user.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
