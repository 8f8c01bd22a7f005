//! Rules for text people type, in one place: no NUL anywhere (PostgreSQL cannot store it),
//! labels others see (display names, group titles) without bidi overrides, hidden
//! characters or invisible-only content, the look-alike key of a name, and emails compared
//! in one normal form.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Text that breaks a rule: the error code clients see (`invalid_text`,
/// `invalid_display_name`, `invalid_title`…) and what is wrong. The API answers it as a
/// 400 (`error.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TextError {
    pub code: &'static str,
    pub message: String,
}

impl TextError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The answer to any text with U+0000 in it.
pub fn nul_refused() -> TextError {
    TextError::new(
        "invalid_text",
        "text must not contain the NUL character (U+0000)",
    )
}

/// Refuses text containing U+0000.
pub fn check_no_nul(text: &str) -> Result<(), TextError> {
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

/// Characters that take no room and hide inside a label: zero-width space, word joiner,
/// BOM, soft hyphen, invisible operators, Hangul fillers, tags… (format characters and the
/// blank "letters"). Two exceptions keep real writing working: a zero-width joiner or
/// non-joiner between two characters that are neither ASCII nor spaces (emoji sequences
/// such as 👩‍💻, Persian and Indic words), and tag characters right after 🏴 or another
/// tag (subdivision flags such as 🏴󠁧󠁢󠁳󠁣󠁴󠁿).
fn hidden_at(chars: &[char], i: usize) -> bool {
    let c = chars[i];
    let prev = i.checked_sub(1).map(|p| chars[p]);
    let next = chars.get(i + 1).copied();
    let joins = |n: Option<char>| {
        n.is_some_and(|n| {
            !n.is_ascii() && !n.is_whitespace() && n.general_category() != GeneralCategory::Format
        })
    };
    match c {
        '\u{200C}' | '\u{200D}' => !(joins(prev) && joins(next)),
        '\u{E0020}'..='\u{E007F}' => !matches!(prev, Some('\u{1F3F4}' | '\u{E0020}'..='\u{E007F}')),
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{034F}' => true,
        _ => c.general_category() == GeneralCategory::Format,
    }
}

/// The look-alike key of a display name: the confusable skeleton (Unicode TS #39) of its
/// lowercase form, lowercased again, with `i` and `l` as one letter (a capital I looks
/// like an l, and case is ignored), so `alice`, `ALICE`, `aIice`, `аlice` (Cyrillic а)
/// and `ａｌｉｃｅ` share one. Coarser than look-alike on purpose: a false match only adds
/// a username beside a name. Not for display; clients compare keys.
pub fn name_key(name: &str) -> String {
    let skeleton: String = unicode_security::skeleton(&name.to_lowercase()).collect();
    skeleton
        .to_lowercase()
        .chars()
        .map(|c| if c == 'i' { 'l' } else { c })
        .collect()
}

/// Trims and checks a label other people see (`field` names it in the error, `code` is
/// the error code): 1–`max_chars` characters, no control characters, no bidi controls,
/// and at least one visible character.
pub fn clean_label(
    text: &str,
    field: &str,
    code: &'static str,
    max_chars: usize,
) -> Result<String, TextError> {
    let text = text.trim();
    let count = text.chars().count();
    if count == 0 || count > max_chars || text.chars().any(char::is_control) {
        return Err(TextError::new(
            code,
            format!("{field} must be 1–{max_chars} characters without control characters"),
        ));
    }
    if text.chars().any(is_bidi_control) {
        return Err(TextError::new(
            code,
            format!(
                "{field} must not contain bidi override or isolate characters (U+202A–U+202E, U+2066–U+2069)"
            ),
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    if let Some(i) = (0..chars.len()).find(|&i| hidden_at(&chars, i)) {
        return Err(TextError::new(
            code,
            format!(
                "{field} must not contain invisible characters such as U+{:04X} (zero-width spaces and joiners, soft hyphens, fillers)",
                u32::from(chars[i])
            ),
        ));
    }
    if text.chars().all(is_invisible) {
        return Err(TextError::new(
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
    fn labels_refuse_hidden_characters_inside_but_keep_real_writing() {
        for hidden in [
            "a\u{200B}l\u{200B}i\u{200B}c\u{200B}e",
            "al\u{200D}ice",
            "ali\u{200C}ce",
            "alice\u{2060}",
            "al\u{AD}ice",
            "\u{FEFF}alice",
            "ali\u{3164}ce",
            "al\u{115F}ice",
            "a\u{E0041}lice",
            "alice\u{2062}",
        ] {
            assert!(
                clean_label(hidden, "name", "x", 64).is_err(),
                "{hidden:?} was accepted"
            );
        }
        for fine in [
            "Ann Lee",
            "👩\u{200D}💻 Ann",
            "👨\u{200D}👩\u{200D}👧",
            "می\u{200C}خواهم",
            "क्\u{200D}ष",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "❤\u{FE0F} Ann",
            "Zoë",
        ] {
            assert!(
                clean_label(fine, "name", "x", 64).is_ok(),
                "{fine:?} was refused"
            );
        }
    }

    #[test]
    fn look_alike_names_share_a_key() {
        let alice = name_key("alice");
        assert_eq!(name_key("Alice"), alice);
        assert_eq!(name_key("\u{430}lice"), alice, "Cyrillic а");
        assert_eq!(name_key("ａｌｉｃｅ"), alice, "fullwidth");
        assert_eq!(name_key("aIice"), alice, "capital I for l");
        assert_eq!(name_key("ALICE"), alice);
        assert_eq!(name_key("B0b"), name_key("bob"), "zero for o");
        assert_ne!(name_key("alicia"), alice);
        assert_ne!(name_key("bob"), alice);
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
