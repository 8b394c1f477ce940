//! Console passwords: argon2id hashes in PHC form (salt and parameters inside), checked off
//! the async threads. The parameters are the crate's defaults (OWASP's minimum for
//! argon2id: 19 MiB, two passes, one lane).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password the console accepts.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest (argon2 takes any length; this bounds the work a request can ask for).
pub const PASSWORD_MAX_BYTES: usize = 256;

/// Why `password` is not acceptable for `user`, if it is not.
pub fn check_new(user: &str, password: &str) -> Result<(), String> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(format!("a password needs at least {PASSWORD_MIN_CHARS} characters; a short sentence works well"));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(format!("a password may be at most {PASSWORD_MAX_BYTES} bytes"));
    }
    if password.to_lowercase().contains(&user.to_lowercase()) {
        return Err("a password may not contain the user name".into());
    }
    let distinct: std::collections::BTreeSet<char> = password.chars().collect();
    if distinct.len() < 5 {
        return Err("a password needs more than four different characters".into());
    }
    Ok(())
}

/// The PHC string of `password` with a fresh salt.
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password failed: {e}"))
}

/// True if `password` matches the PHC string `phc`.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > PASSWORD_MAX_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash no password matches, checked when a user has none, so that an unknown name
/// takes as long to refuse as a wrong password.
pub fn dummy_phc() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("no password matches this one: the user is unknown").expect("argon2 hash"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterY", &a));
        assert!(!verify("anything", "not a phc string"));
        assert!(!verify("anything", dummy_phc()));
    }

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        assert!(check_new("alice", "short").unwrap_err().contains("12"));
        assert!(check_new("alice", "alice-password-1").unwrap_err().contains("user name"));
        assert!(check_new("alice", "aaaaaaaaaaaaaaaa").unwrap_err().contains("different"));
        assert!(check_new("alice", "ward three night shift").is_ok());
    }
}
