//! Rules for text people type, in one place: no NUL anywhere (PostgreSQL cannot store it),
//! labels others see (display names, group titles) without bidi overrides or invisible-only
//! content, and emails compared in one normal form.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::error::ApiError;

/// The answer to any text with U+0000 in it.
pub fn nul_refused() -> ApiError {
    ApiError::validation(
        "invalid_text",
        "text must not contain the NUL character (U+0000)",
    )
}

/// Refuses text containing U+0000.
pub fn check_no_nul(text: &str) -> Result<(), ApiError> {
    if text.contains('\0') {
        return Err(nul_refused());
    }
    Ok(())
}

/// Whether any string (or object key) inside a JSON value contains U+0000.
pub fn json_has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Bidi embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069): they
/// let a name display as something else ("evil\u{202E}gpj.exe").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing on their own: spaces, format characters (zero-width
/// space and joiners, BOM, soft hyphen…), combining marks, unassigned or private code
/// points, and the blank "letters" (Hangul fillers, braille blank).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}' | '\u{034F}'
        )
        || matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::NonspacingMark
                | GeneralCategory::EnclosingMark
                | GeneralCategory::SpacingMark
                | GeneralCategory::Unassigned
                | GeneralCategory::PrivateUse
                | GeneralCategory::Surrogate
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::SpaceSeparator
        )
}

/// Trims and checks a label other people see (`field` names it in the error, `code` is
/// the error code): 1–`max_chars` characters, no control characters, no bidi controls,
/// and at least one visible character.
pub fn clean_label(
    text: &str,
    field: &str,
    code: &'static str,
    max_chars: usize,
) -> Result<String, ApiError> {
    let text = text.trim();
    let count = text.chars().count();
    if count == 0 || count > max_chars || text.chars().any(char::is_control) {
        return Err(ApiError::validation(
            code,
            format!("{field} must be 1–{max_chars} characters without control characters"),
        ));
    }
    if text.chars().any(is_bidi_control) {
        return Err(ApiError::validation(
            code,
            format!(
                "{field} must not contain bidi override or isolate characters (U+202A–U+202E, U+2066–U+2069)"
            ),
        ));
    }
    if text.chars().all(is_invisible) {
        return Err(ApiError::validation(
            code,
            format!("{field} must contain a visible character"),
        ));
    }
    Ok(text.to_owned())
}

/// The form an email is stored in: trimmed, Unicode NFKC (fullwidth `ａ` → `a`). The
/// store compares it lowercased (`email_lower`), so look-alike spellings are one account.
pub fn normalize_email(email: &str) -> String {
    email.trim().nfkc().collect()
}

/// The form a login (username or email) is looked up in: NFKC and lowercase.
pub fn normalize_login(login: &str) -> String {
    normalize_email(login).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_refuse_bidi_controls_and_invisible_only_text() {
        assert_eq!(clean_label("  Ann ", "name", "x", 64).expect("ok"), "Ann");
        assert!(clean_label("عليّ", "name", "x", 64).is_ok());
        assert!(clean_label("e\u{301}", "name", "x", 64).is_ok());
        assert!(clean_label("👍", "name", "x", 64).is_ok());
        assert!(clean_label("evil\u{202E}gpj.exe", "name", "x", 64).is_err());
        assert!(clean_label("a\u{2066}b", "name", "x", 64).is_err());
        assert!(clean_label("\u{200B}\u{200D}", "name", "x", 64).is_err());
        assert!(clean_label("\u{3164}", "name", "x", 64).is_err());
        assert!(clean_label("\u{2800} \u{FEFF}", "name", "x", 64).is_err());
        assert!(clean_label("a\u{0}b", "name", "x", 64).is_err());
    }

    #[test]
    fn emails_normalize_fullwidth_and_case() {
        assert_eq!(
            normalize_email(" ＡＬＩＣＥ@ｅｘａｍｐｌｅ.ORG "),
            "ALICE@example.ORG"
        );
        assert_eq!(
            normalize_login("ＡＬＩＣＥ@ｅｘａｍｐｌｅ.ORG"),
            "alice@example.org"
        );
    }

    #[test]
    fn nul_is_found_anywhere_in_json() {
        assert!(json_has_nul(
            &serde_json::json!({"a": [1, {"b": "x\u{0}"}]})
        ));
        assert!(json_has_nul(&serde_json::json!({"k\u{0}": 1})));
        assert!(!json_has_nul(&serde_json::json!({"a": ["\\u0000"]})));
    }
}
