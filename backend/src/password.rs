//! User passwords: Argon2id hashes in PHC string format (the `argon2` crate's defaults).
//!
//! A missing user is verified against a fixed dummy hash so that timing does not reveal which usernames
//! exist.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{Result, ServiceError};
use crate::util::random_bytes;

/// Minimum password length in characters.
pub const MIN_PASSWORD_LEN: usize = 12;

pub fn check_policy(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ServiceError::InvalidRequest(format!(
            "passwords need at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|_| ServiceError::Crypto("password salt"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|phc| phc.to_string())
        .map_err(|_| ServiceError::Crypto("password hashing"))
}

/// Whether `password` matches the stored PHC hash; `None` (unknown user) burns the same time and fails.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    // A valid Argon2id hash of a random, discarded password with the default parameters.
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$V2YNLCLa5ZKljFXm7WItuJKPLYCxoJFVOwb3Xc8tB9o";
    let phc = stored.unwrap_or(DUMMY);
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let phc = hash("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&phc)));
        assert!(!verify("wrong horse battery", Some(&phc)));
        assert!(!verify("correct horse battery", None));
        assert!(check_policy("short").is_err());
    }
}
