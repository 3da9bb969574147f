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

/// The password rules of an engine (DOMAIN.md §7): length and forbidden characters.
fn rules(engine: &str) -> (usize, &'static str) {
    // Printable ASCII except `/`, `"`, `@` and space everywhere; Oracle also forbids `&` `'`.
    if engine.starts_with("oracle") {
        (30, "/\"@ &'")
    } else if engine.contains("postgres") {
        (40, "/\"@ ")
    } else {
        // MySQL, MariaDB, Aurora MySQL (41 at most), SQL Server.
        (40, "/\"@ ")
    }
}

/// A new master password for `engine`, with at least one upper, lower, digit and symbol.
pub fn generate(engine: &str) -> Secret {
    let (length, forbidden) = rules(engine);
    let symbols: Vec<u8> = (b'!'..=b'~')
        .filter(|c| !c.is_ascii_alphanumeric() && !forbidden.as_bytes().contains(c))
        .collect();
    let classes: [&[u8]; 4] = [
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        b"abcdefghijklmnopqrstuvwxyz",
        b"0123456789",
        &symbols,
    ];
    let all: Vec<u8> = classes.concat();
    // ThreadRng is a CSPRNG (ChaCha, seeded and reseeded from the OS).
    let mut rng = rand::rng();
    let mut bytes: Vec<u8> = classes
        .iter()
        .filter_map(|class| class.choose(&mut rng).copied())
        .collect();
    while bytes.len() < length {
        if let Some(c) = all.choose(&mut rng) {
            bytes.push(*c);
        }
    }
    bytes.shuffle(&mut rng);
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
                let max = if engine.starts_with("oracle") { 30 } else { 41 };
                assert!((8..=max).contains(&pw.len()), "{engine}: {}", pw.len());
                assert!(pw.bytes().all(|b| (33..=126).contains(&b)));
                assert!(!pw.contains(['/', '"', '@', ' ']));
                if engine.starts_with("oracle") {
                    assert!(!pw.contains(['&', '\'']));
                }
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
