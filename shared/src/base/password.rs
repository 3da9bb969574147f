//! Master passwords: generated from a CSPRNG to the engine's rules, held in a type that
//! never prints its value.

use rand::seq::{IndexedRandom, SliceRandom};

/// A secret value. `Debug` is redacted and there is no `Display`: it can only be read with
/// [`Secret::expose`], at the one place it is sent to AWS.
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

/// The length of an engine's master password (DOMAIN.md §7): Oracle takes at most 30
/// characters, MySQL 41, the others more.
fn length(engine: &str) -> usize {
    if engine.starts_with("oracle") {
        30
    } else {
        40
    }
}

/// The symbols a password draws from: URI-unreserved (RFC 3986: nothing to percent-encode in
/// a connection URI), with no meaning to a POSIX shell, and allowed by every engine (none is
/// `/`, `"`, `@`, space, `&` or `'`). With letters and digits, 65 characters: log2(65) ≈ 6.02
/// bits each, so at least 30 × 6.02 ≈ 180 bits for Oracle and 40 × 6.02 ≈ 240 bits for the
/// others (less a bit or two for the classes that must appear).
const SYMBOLS: &[u8] = b"-._";

/// A new master password for `engine`, with at least one upper, lower, digit and symbol,
/// starting with a letter or digit (so that no program reads it as an option).
pub fn generate(engine: &str) -> Secret {
    let classes: [&[u8]; 4] = [
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        b"abcdefghijklmnopqrstuvwxyz",
        b"0123456789",
        SYMBOLS,
    ];
    let all: Vec<u8> = classes.concat();
    // ThreadRng is a CSPRNG (ChaCha, seeded and reseeded from the OS).
    let mut rng = rand::rng();
    let mut bytes: Vec<u8> = classes
        .iter()
        .filter_map(|class| class.choose(&mut rng).copied())
        .collect();
    while bytes.len() < length(engine) {
        if let Some(c) = all.choose(&mut rng) {
            bytes.push(*c);
        }
    }
    bytes.shuffle(&mut rng);
    if let Some(first) = bytes.iter().position(u8::is_ascii_alphanumeric) {
        bytes.swap(0, first);
    }
    Secret(bytes.into_iter().map(char::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_engine_rules() {
        for engine in [
            "mysql",
            "aurora-mysql",
            "postgres",
            "aurora-postgresql",
            "mariadb",
            "oracle-ee",
        ] {
            for _ in 0..50 {
                let secret = generate(engine);
                let pw = secret.expose();
                let length = if engine.starts_with("oracle") { 30 } else { 40 };
                assert_eq!(pw.len(), length, "{engine}");
                // Nothing a shell or a connection URI needs quoted or escaped.
                assert!(pw
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)));
                assert!(pw.as_bytes()[0].is_ascii_alphanumeric(), "{pw:?}");
                assert!(pw.bytes().any(|b| b.is_ascii_uppercase()));
                assert!(pw.bytes().any(|b| b.is_ascii_lowercase()));
                assert!(pw.bytes().any(|b| b.is_ascii_digit()));
                assert!(pw.bytes().any(|b| !b.is_ascii_alphanumeric()));
            }
        }
        assert_ne!(generate("mysql").expose(), generate("mysql").expose());
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret = generate("mysql");
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }
}
