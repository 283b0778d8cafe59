use axum::{
    extract::State,
    http::{header::LOCATION, StatusCode},
    response::IntoResponse,
};
use goodsmall_platform::{
    auth::{AuthUser, Role},
    error::{ApiError, ApiResult, ErrorCode, Problem},
    extract::Json,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    accounts::{NewAccount, Profile, ProfileChanges},
    domain::{Address, Email, FieldErrors, Password, PersonName, Phone},
    state::UserState,
};

#[derive(Deserialize, ToSchema)]
pub struct SignUp {
    #[schema(max_length = 254, example = "fan@example.com")]
    pub email: String,
    /// 8 to 128 characters, letters mixed with digits or symbols.
    #[schema(min_length = 8, max_length = 128, example = "correct-horse-1")]
    pub password: String,
    /// 1 to 50 characters once trimmed.
    #[schema(min_length = 1, max_length = 50, example = "Kim Minji")]
    pub name: String,
    /// 7 to 15 digits, an optional leading `+`, and spaces, `-`, `.` or parentheses.
    #[schema(example = "+82 10-5555-0101")]
    pub phone: String,
    /// 5 to 200 characters once trimmed.
    #[schema(min_length = 5, max_length = 200, example = "1 Olympic-ro, Seoul")]
    pub address: String,
}

/// Create a shopper account with a verified e-mail.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = SignUp,
    responses((status = 201, body = Profile), (status = 403, body = Problem, description = "EMAIL_NOT_VERIFIED"),
              (status = 409, body = Problem, description = "EMAIL_TAKEN"), (status = 422, body = Problem,
                  description = "VALIDATION_FAILED")))]
pub async fn sign_up(State(state): State<UserState>, Json(body): Json<SignUp>) -> ApiResult<impl IntoResponse> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(&body.email));
    let password = errors.check("password", Password::parse(&body.password));
    let name = errors.check("name", PersonName::parse(&body.name));
    let phone = errors.check("phone", Phone::parse(&body.phone));
    let address = errors.check("address", Address::parse(&body.address));
    errors.into_result()?;
    let (Some(email), Some(password), Some(name), Some(phone), Some(address)) = (email, password, name, phone, address)
    else {
        unreachable!("every field parsed")
    };
    if !state.verifications.is_verified(&email).await? {
        return Err(ApiError::new(ErrorCode::EmailNotVerified, "verify the e-mail with a code first"));
    }
    let account = NewAccount { email: email.clone(), password, name, phone, address, role: Role::Shopper };
    let id = state.accounts.create(account).await?;
    state.verifications.consume(&email).await?;
    let profile = state.accounts.profile(id).await?.ok_or_else(|| ApiError::internal("new user vanished"))?;
    Ok((StatusCode::CREATED, [(LOCATION, "/api/users/me")], Json(profile)))
}

async fn own_profile(state: &UserState, user: &AuthUser) -> ApiResult<Profile> {
    state
        .accounts
        .profile(user.user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UserNotFound, "the account no longer exists"))
}

/// The caller's own profile, decrypted.
#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 401, body = Problem), (status = 404, body = Problem,
              description = "USER_NOT_FOUND")))]
pub async fn me(State(state): State<UserState>, user: AuthUser) -> ApiResult<Json<Profile>> {
    Ok(Json(own_profile(&state, &user).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct ProfileUpdate {
    /// 1 to 50 characters once trimmed.
    #[schema(min_length = 1, max_length = 50)]
    pub name: Option<String>,
    /// 7 to 15 digits, an optional leading `+`, and spaces, `-`, `.` or parentheses.
    pub phone: Option<String>,
    /// 5 to 200 characters once trimmed.
    #[schema(min_length = 5, max_length = 200)]
    pub address: Option<String>,
}

/// Change name, phone or address (e-mail is the login and cannot change here).
#[utoipa::path(patch, path = "/api/users/me", tag = "users", security(("bearer" = [])), request_body = ProfileUpdate,
    responses((status = 200, body = Profile), (status = 404, body = Problem, description = "USER_NOT_FOUND"),
              (status = 422, body = Problem, description = "VALIDATION_FAILED")))]
pub async fn update_me(
    State(state): State<UserState>,
    user: AuthUser,
    Json(body): Json<ProfileUpdate>,
) -> ApiResult<Json<Profile>> {
    let mut errors = FieldErrors::default();
    let changes = ProfileChanges {
        name: body.name.and_then(|v| errors.check("name", PersonName::parse(&v))),
        phone: body.phone.and_then(|v| errors.check("phone", Phone::parse(&v))),
        address: body.address.and_then(|v| errors.check("address", Address::parse(&v))),
    };
    errors.into_result()?;
    if !state.accounts.update_profile(user.user_id, changes).await? {
        return Err(ApiError::new(ErrorCode::UserNotFound, "the account no longer exists"));
    }
    Ok(Json(own_profile(&state, &user).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    /// 8 to 128 characters, letters mixed with digits or symbols.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// Change the password; every session of the account (this one included) is logged out.
#[utoipa::path(put, path = "/api/users/me/password", tag = "users", security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 204, description = "changed; every session is logged out"), (status = 403, body = Problem,
              description = "WRONG_CURRENT_PASSWORD"),
              (status = 404, body = Problem, description = "USER_NOT_FOUND"), (status = 422, body = Problem,
                  description = "VALIDATION_FAILED")))]
pub async fn change_password(
    State(state): State<UserState>,
    user: AuthUser,
    Json(body): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    let mut errors = FieldErrors::default();
    let new_password = errors.check("new_password", Password::parse(&body.new_password));
    errors.into_result()?;
    let new_password = new_password.expect("checked above");
    let stored = state
        .accounts
        .password_hash(user.user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UserNotFound, "the account no longer exists"))?;
    if !state.accounts.verify_password(body.current_password, Some(stored)).await? {
        return Err(ApiError::new(ErrorCode::WrongCurrentPassword, "the current password is wrong"));
    }
    state.accounts.set_password(user.user_id, &new_password).await?;
    state.sessions.revoke_all(user.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
