//! A database's digest and the differences between two.

use std::collections::BTreeMap;

use crate::Engine;

/// One table's row count and checksum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableDigest {
    pub rows: u64,
    /// Two sums modulo 2⁶⁴ of two 64-bit hashes of each row: 32 hex digits. Two, not one, so
    /// that no two changed rows keep the checksum by chance (2⁻⁶⁴ per pair, not 2⁻³²).
    pub checksum: String,
}

/// Every user table of a database, by qualified name (`database.schema.table` on
/// PostgreSQL, `database.table` on MySQL/MariaDB).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Digest {
    pub engine: Engine,
    /// How the checksums were computed; two digests compare only under the same method.
    pub method: String,
    pub tables: BTreeMap<String, TableDigest>,
}

/// How one table differs between an expected digest and one found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "difference", rename_all = "kebab-case")]
pub enum Difference {
    /// In the expected digest, not in the one found.
    Missing { table: String },
    /// In the one found, not expected.
    Unexpected { table: String },
    /// Row counts differ.
    Rows {
        table: String,
        expected: u64,
        found: u64,
    },
    /// Same row count, different contents.
    Contents { table: String },
}

impl Difference {
    pub fn table(&self) -> &str {
        match self {
            Self::Missing { table }
            | Self::Unexpected { table }
            | Self::Rows { table, .. }
            | Self::Contents { table } => table,
        }
    }

    /// One line for the operator.
    pub fn describe(&self) -> String {
        match self {
            Self::Missing { table } => format!("{table}: table missing"),
            Self::Unexpected { table } => format!("{table}: table not in the expected digest"),
            Self::Rows {
                table,
                expected,
                found,
            } => format!("{table}: {found} rows, expected {expected}"),
            Self::Contents { table } => {
                format!("{table}: same row count, different contents (a value changed)")
            }
        }
    }
}

impl Digest {
    pub fn new(engine: Engine, method: &str) -> Self {
        Self {
            engine,
            method: method.to_owned(),
            tables: BTreeMap::new(),
        }
    }

    pub fn rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }

    /// Each table of `found` that differs from this, the expected digest. Empty: the same data.
    pub fn differences(&self, found: &Digest) -> Vec<Difference> {
        let mut out = Vec::new();
        for (table, expected) in &self.tables {
            match found.tables.get(table) {
                None => out.push(Difference::Missing {
                    table: table.clone(),
                }),
                Some(got) if got.rows != expected.rows => out.push(Difference::Rows {
                    table: table.clone(),
                    expected: expected.rows,
                    found: got.rows,
                }),
                Some(got) if got.checksum != expected.checksum => out.push(Difference::Contents {
                    table: table.clone(),
                }),
                Some(_) => {}
            }
        }
        for table in found.tables.keys() {
            if !self.tables.contains_key(table) {
                out.push(Difference::Unexpected {
                    table: table.clone(),
                });
            }
        }
        out
    }
}

/// 2⁶⁴, the modulus of the checksums, as the SQL literal both engines read.
pub(crate) const MODULUS: &str = "18446744073709551616";

/// The two sums the server returned (decimals below 2⁶⁴) as 32 hex digits.
pub(crate) fn checksum_hex(high: &str, low: &str) -> Option<String> {
    let read = |decimal: &str| decimal.trim().parse::<u64>().ok();
    Some(format!("{:016x}{:016x}", read(high)?, read(low)?))
}

/// A table's name in a digest: its parts joined by dots, a part that holds a dot or a quote
/// quoted, so that no two tables share a name (`a`.`b.c` is not `a.b`.`c`).
pub(crate) fn table_name(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|part| {
            if part.contains(['.', '"']) {
                format!("\"{}\"", part.replace('"', "\"\""))
            } else {
                (*part).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(tables: &[(&str, u64, &str)]) -> Digest {
        let mut d = Digest::new(Engine::Postgres, "test");
        for (name, rows, sum) in tables {
            d.tables.insert(
                (*name).to_owned(),
                TableDigest {
                    rows: *rows,
                    checksum: (*sum).to_owned(),
                },
            );
        }
        d
    }

    #[test]
    fn each_kind_of_difference_names_its_table() {
        let expected = digest(&[
            ("a.public.t1", 3, "01"),
            ("a.public.t2", 2, "02"),
            ("a.public.t3", 1, "03"),
        ]);
        let found = digest(&[
            ("a.public.t1", 3, "01"),
            ("a.public.t2", 2, "ff"),
            ("a.public.t4", 1, "04"),
        ]);
        let diffs = expected.differences(&found);
        assert_eq!(
            diffs,
            vec![
                Difference::Contents {
                    table: "a.public.t2".into()
                },
                Difference::Missing {
                    table: "a.public.t3".into()
                },
                Difference::Unexpected {
                    table: "a.public.t4".into()
                },
            ]
        );
        let fewer = digest(&[
            ("a.public.t1", 2, "01"),
            ("a.public.t2", 2, "02"),
            ("a.public.t3", 1, "03"),
        ]);
        assert_eq!(
            expected.differences(&fewer),
            vec![Difference::Rows {
                table: "a.public.t1".into(),
                expected: 3,
                found: 2
            }]
        );
        assert!(expected.differences(&expected.clone()).is_empty());
    }

    #[test]
    fn checksums_read_as_thirty_two_hex_digits() {
        assert_eq!(
            checksum_hex("0", "18446744073709551615").as_deref(),
            Some("0000000000000000ffffffffffffffff")
        );
        assert_eq!(checksum_hex("18446744073709551616", "0"), None);
    }

    #[test]
    fn dotted_names_never_meet() {
        assert_eq!(table_name(&["shop", "app", "orders"]), "shop.app.orders");
        assert_ne!(table_name(&["a", "b.c"]), table_name(&["a.b", "c"]));
        assert_eq!(table_name(&["a", "b.c"]), r#"a."b.c""#);
    }
}
