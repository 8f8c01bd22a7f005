//! Accounts: the rules for their fields (their views are in `views`).

pub mod routes;

use crate::{AppState, error::ApiError, events::Change};

/// Deletes account `id` (the checks are the caller's): its sessions end at once, on
/// every instance; its avatar files are deleted; its messages stay, under "Deleted
/// user", and those with a voice file or photo become tombstones (the files deleted).
pub async fn delete_account(state: &AppState, id: i64) -> Result<(), ApiError> {
    let gone = state.store.delete_account(id).await?;
    state.end_sessions(gone.sessions).await;
    for file in &gone.avatar_files {
        state.media.forget(file).await;
    }
    // Everyone who sees the person now sees "Deleted user", without avatar.
    state.publish(Change::UserUpdated { user_id: id }).await;
    let removed = crate::messages::changes::remove_files_of_deleted_accounts(state).await?;
    tracing::info!(user_id = id, files = removed, "account deleted");
    Ok(())
}

pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longer passwords only cost hashing time.
pub const PASSWORD_MAX_BYTES: usize = 1024;
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
pub const EMAIL_MAX_BYTES: usize = 254;

/// 3–32 ASCII letters, digits, `_`, `.` or `-`.
pub fn validate_username(name: &str) -> Result<(), ApiError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !USERNAME_LEN.contains(&name.len()) || !ok_chars {
        return Err(ApiError::validation(
            "invalid_username",
            "username must be 3–32 characters: letters, digits, '_', '.' or '-'",
        ));
    }
    Ok(())
}

pub fn validate_email(email: &str) -> Result<(), ApiError> {
    let domain_has_dot = email.rsplit_once('@').is_some_and(|(_, d)| d.contains('.'));
    if email.len() > EMAIL_MAX_BYTES
        || !domain_has_dot
        || !email_address::EmailAddress::is_valid(email)
    {
        return Err(ApiError::validation(
            "invalid_email",
            "that is not a valid email address",
        ));
    }
    Ok(())
}

pub fn validate_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(ApiError::validation(
            "weak_password",
            format!("password must be at least {PASSWORD_MIN_CHARS} characters"),
        ));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(ApiError::validation(
            "invalid_password",
            format!("password must be at most {PASSWORD_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Trims and checks a display name: 1–64 characters, no control characters.
pub fn clean_display_name(name: &str) -> Result<String, ApiError> {
    Ok(crate::text::clean_label(
        name,
        "display name",
        "invalid_display_name",
        DISPLAY_NAME_MAX_CHARS,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["abc", "a.b-c_d", "ABC123", &"x".repeat(32)] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "", "has space", "émile", "a/b", &"x".repeat(33)] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_and_passwords() {
        assert!(validate_email("ann@example.org").is_ok());
        for bad in [
            "ann",
            "ann@",
            "@example.org",
            "ann@localhost",
            "a b@example.org",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password("1234567").is_err());
        assert!(validate_password(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn display_names_are_trimmed() {
        assert_eq!(clean_display_name("  Ann  ").expect("ok"), "Ann");
        assert!(clean_display_name("   ").is_err());
        assert!(clean_display_name("a\u{0}b").is_err());
    }
}
