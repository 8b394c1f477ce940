//! Validation of the fields a client or an operator sends: camera ids, campus and user
//! names, purposes, time ranges. Every check returns the message the caller shows, which
//! says what was wrong and what to send instead.
//!
//! What an accepted value guarantees (the fuzz target `fields` checks these):
//! - camera ids, campus and user names are 1 to 64 bytes of ASCII letters, digits and a
//!   few punctuation marks, never `.` or `..` alone: safe as a path component, a metric
//!   label and a log field without escaping;
//! - a purpose is at most [`PURPOSE_MAX_BYTES`] and says something;
//! - a time range is closed, positive, ordered and at most [`RANGE_MAX_MS`] long.

/// Longest camera id.
pub const CAMERA_ID_MAX_LEN: usize = 64;
/// Longest campus name.
pub const CAMPUS_MAX_LEN: usize = 64;
/// Longest user name.
pub const USER_NAME_MAX_LEN: usize = 64;
/// Shortest purpose text that counts as a reason (R4: who, when and for what purpose).
pub const PURPOSE_MIN_CHARS: usize = 8;
/// Longest purpose.
pub const PURPOSE_MAX_BYTES: usize = 1000;
/// Longest time range one footage request may span.
pub const RANGE_MAX_MS: i64 = 366 * 24 * 3600 * 1000;

/// Checks a name made of `[A-Za-z0-9]` and `extra` punctuation, 1 to `max` bytes.
fn check_name(what: &str, s: &str, max: usize, extra: &[char], allowed: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("{what} must be 1 to {max} characters, got {}", s.len()));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || extra.contains(c))) {
        return Err(format!("{what} {s:?} contains {c:?}; use letters, digits, {allowed}"));
    }
    if s == "." || s == ".." {
        return Err(format!("{what} may not be {s:?}; use at least one letter or digit"));
    }
    Ok(())
}

/// Checks a camera id: 1–64 characters of letters, digits, `-`, `_`, `.`.
pub fn validate_camera_id(id: &str) -> Result<(), String> {
    check_name("camera id", id, CAMERA_ID_MAX_LEN, &['-', '_', '.'], "'-', '_' and '.'")
}

/// Checks a campus name: what `init` and `join` accept.
pub fn validate_campus(c: &str) -> Result<(), String> {
    check_name("campus name", c, CAMPUS_MAX_LEN, &['-', '_', '.'], "'-', '_', '.'")
}

/// Checks a user name (or another account-like name such as a case id).
pub fn validate_user_name(what: &str, s: &str) -> Result<(), String> {
    check_name(what, s, USER_NAME_MAX_LEN, &['-', '_', '.', '@'], "'-', '_', '.', '@'")
}

/// Checks that a purpose says something: at least [`PURPOSE_MIN_CHARS`] characters and
/// not just repeated or filler text.
pub fn validate_purpose(purpose: &str) -> Result<(), String> {
    let p = purpose.trim();
    let hint = "for example --purpose \"incident 2026-113: fall in ward 3, 08:10\"";
    if p.len() > PURPOSE_MAX_BYTES {
        return Err(format!("purpose is longer than {PURPOSE_MAX_BYTES} bytes; say why in a sentence or two"));
    }
    if p.is_empty() {
        return Err(format!("a purpose is required for every footage access; {hint}"));
    }
    if p.chars().count() < PURPOSE_MIN_CHARS {
        return Err(format!("purpose {p:?} is too short to say why (at least {PURPOSE_MIN_CHARS} characters); {hint}"));
    }
    let distinct: std::collections::BTreeSet<char> =
        p.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    let filler = ["test", "testing", "asdf", "none", "n/a", "purpose", "xxx", "because"];
    if distinct.len() < 4 || filler.contains(&p.to_lowercase().as_str()) {
        return Err(format!("purpose {p:?} does not say why the footage is needed; {hint}"));
    }
    Ok(())
}

/// RFC 3339 rendering of a millisecond timestamp, for messages.
/// Splits a join token `cjt1.<secret>.<ca fingerprint>` into its secret (64 characters)
/// and the fingerprint of the cluster CA it is for (32 characters).
pub fn parse_join_token(token: &str) -> Result<(&str, &str), String> {
    let mut parts = token.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("cjt1"), Some(secret), Some(fp), None) if secret.len() == 64 && fp.len() == 32 => Ok((secret, fp)),
        _ => Err("this is not a join token (expected cjt1.…); print one with `custos node join-token`".into()),
    }
}

pub fn fmt_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// "3.0 s", "2 h 5 min", "40 d 0 h": a clock difference in words.
pub fn fmt_skew(ms: i64) -> String {
    let a = ms.unsigned_abs();
    // Whole minutes, rounded: a clock 40 days ahead measures a few ms short of it.
    let s = if a < 120_000 { a / 1000 } else { (a + 30_000) / 60_000 * 60 };
    if s < 120 {
        format!("{:.1} s", a as f64 / 1000.0)
    } else if s < 2 * 3600 {
        format!("{} min", s / 60)
    } else if s < 2 * 86_400 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else {
        format!("{} d {} h", s / 86_400, s % 86_400 / 3600)
    }
}

/// Validates a footage request's time range.
pub fn validate_range(from_ms: i64, to_ms: i64) -> Result<(), String> {
    if from_ms <= 0 || to_ms <= 0 {
        return Err("both --from and --to are required: open-ended time ranges are refused".into());
    }
    if from_ms >= to_ms {
        return Err(format!(
            "time range is inverted or empty: from ({}) must be before to ({})",
            fmt_ms(from_ms),
            fmt_ms(to_ms)
        ));
    }
    if to_ms - from_ms > RANGE_MAX_MS {
        return Err("time range spans more than 366 days; narrow it".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_split_into_secret_and_ca_fingerprint() {
        let (secret, fp) = (&"s".repeat(64), &"f".repeat(32));
        assert_eq!(parse_join_token(&format!(" cjt1.{secret}.{fp}\n")).unwrap(), (secret.as_str(), fp.as_str()));
        for bad in ["", "cjt1", &format!("cjt2.{secret}.{fp}"), &format!("cjt1.{secret}.{fp}.x"), "cjt1.short.fp"] {
            assert!(parse_join_token(bad).unwrap_err().contains("join-token"), "{bad:?}");
        }
    }

    #[test]
    fn names_are_path_and_label_safe() {
        assert!(validate_camera_id("ward-3.corridor_2").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "é", "x\n"] {
            assert!(validate_camera_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_user_name("user name", "ops@east").is_ok());
        assert!(validate_campus(&"c".repeat(65)).is_err());
    }

    #[test]
    fn purposes_must_say_why_and_stay_short() {
        assert!(validate_purpose("incident 2026-113, fall in ward 3").is_ok());
        for bad in ["", "   ", "testing", "aaaaaaaaaaaa", "because"] {
            assert!(validate_purpose(bad).is_err(), "{bad:?}");
        }
        let long = "fall in ward 3 ".repeat(100);
        assert!(validate_purpose(&long).unwrap_err().contains("longer than"));
    }

    #[test]
    fn ranges_are_closed_ordered_and_bounded() {
        assert!(validate_range(1, 2).is_ok());
        assert!(validate_range(0, 2).is_err());
        assert!(validate_range(5, 5).unwrap_err().contains("inverted"));
        assert!(validate_range(1, 1 + RANGE_MAX_MS + 1).is_err());
        assert!(validate_range(i64::MAX - 1, i64::MAX).is_ok());
        assert!(validate_range(1, i64::MAX).is_err());
    }
}
