//! The handoff manifest: what the source hands the target, versioned and free of secrets.
//!
//! Read strictly: size-limited, UTF-8, a known `schema`, no unknown fields, every account id,
//! identifier and ARN validated while it is parsed. Written atomically (temp file + rename)
//! so a killed run never leaves half a manifest.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::vocabulary::{DbKind, Encryption};
use crate::ident::{check_rds_id, AccountId, Arn, RdsIdKind, Region};

/// The version written. 2 added `snapshot.source_encryption`, 3 the optional `data` digest,
/// 4 `target.region` (a cross-region handoff); versions 1 to 3 are still read.
pub const SCHEMA_VERSION: u32 = 4;
/// The version a handoff within one region writes: everything in it, a release before 4 reads.
pub const SCHEMA_WITHIN_REGION: u32 = 3;
/// The oldest version read.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;
/// Far above any real manifest; refuses to read a huge file into memory.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// AWS's limit of tags per resource.
pub const MAX_TAGS: usize = 50;
/// Tag keys a manifest may not carry: AWS's own, and the toolkit's, which the target sets.
pub const RESERVED_TAG_PREFIXES: &[&str] = &["aws:", "rds-handoff:"];

/// The manifest's fingerprint: the SHA-256 of its bytes, in lowercase hex (what `sha256sum`
/// prints), so the target can check it on its own.
pub fn fingerprint(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a tag is one a manifest may carry.
pub fn is_user_tag(key: &str) -> bool {
    !RESERVED_TAG_PREFIXES.iter().any(|p| key.starts_with(p))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub tool_version: String,
    pub created_at: String,
    pub source: SourceSide,
    pub target: TargetSide,
    pub database: Database,
    pub snapshot: SharedSnapshot,
    /// The digest of every user table, taken before and after the snapshot and equal both
    /// times (`export --verify-data`): what the target checks its restore against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::datacheck::Digest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSide {
    pub account: AccountId,
    pub region: Region,
    pub partition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSide {
    pub account: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Arn>,
    /// Where the shared snapshot is and the target restores, when not the source's region
    /// (`export --target-region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
}

/// What the target needs to rebuild the database. Names of per-account things (parameter
/// and option groups) are for the target to map to its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub kind: DbKind,
    pub identifier: String,
    pub engine: String,
    pub engine_version: String,
    pub port: Option<i32>,
    pub master_username: String,
    pub database_name: Option<String>,
    pub instance_class: Option<String>,
    pub allocated_storage: Option<i32>,
    pub storage_type: Option<String>,
    pub iops: Option<i32>,
    pub multi_az: bool,
    pub iam_auth: bool,
    pub tags: BTreeMap<String, String>,
    pub parameter_group: Option<String>,
    pub option_group: Option<String>,
}

impl Database {
    /// What no AWS call can check for the target: the fields a restore or a tag call takes,
    /// in the shapes AWS accepts (the rest is compared with the shared snapshot).
    fn check_fields(&self) -> std::result::Result<(), String> {
        if self.tags.len() > MAX_TAGS {
            return Err(format!(
                "database.tags: {} tags, more than AWS allows on a resource ({MAX_TAGS})",
                self.tags.len()
            ));
        }
        for (key, value) in &self.tags {
            if !is_user_tag(key) {
                return Err(format!(
                    "database.tags: `{key}` is reserved (`aws:` is AWS's, `rds-handoff:` the toolkit's own): a manifest may not set it"
                ));
            }
            if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
                return Err(format!(
                    "database.tags: `{key}`: keys are 1 to 128 characters, values at most 256"
                ));
            }
        }
        let name = |field: &str, value: &str, extra: &str| {
            let ok = !value.is_empty()
                && value.len() <= 255
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c) || extra.contains(c));
            if ok {
                Ok(())
            } else {
                Err(format!("database.{field}: `{value}` is not a valid name"))
            }
        };
        name("engine", &self.engine, "")?;
        name("engine_version", &self.engine_version, ".")?;
        name("master_username", &self.master_username, "")?;
        for (field, value) in [
            ("parameter_group", &self.parameter_group),
            ("option_group", &self.option_group),
            ("instance_class", &self.instance_class),
            ("storage_type", &self.storage_type),
            ("database_name", &self.database_name),
        ] {
            if let Some(value) = value {
                name(field, value, ".:")?;
            }
        }
        if let Some(port) = self.port {
            if !(1150..=65535).contains(&port) {
                return Err(format!(
                    "database.port: {port} is outside 1150-65535, the ports RDS accepts"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedSnapshot {
    pub arn: Arn,
    pub encrypted: bool,
    pub kms_key_arn: Option<Arn>,
    /// How the database (or `--from-snapshot`) the shared copy came from was encrypted:
    /// `sse-rds` and `none` reached the key through a temporary cluster (or, for `none`, an
    /// unencrypted share). Absent in manifests from before this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_encryption: Option<Encryption>,
}

impl Manifest {
    /// The region of the shared snapshot, where the target copies and restores it.
    pub fn snapshot_region(&self) -> &Region {
        self.target.region.as_ref().unwrap_or(&self.source.region)
    }

    /// Reads and validates a manifest file; every problem is a usage error naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        Self::read_fingerprinted(path).map(|(manifest, _)| manifest)
    }

    /// [`Self::read`], with the [`fingerprint`] of the very bytes it parsed.
    pub fn read_fingerprinted(path: &Path) -> Result<(Self, String)> {
        let bytes = read_bounded(path, "manifest")?;
        let manifest = Self::parse(&bytes).map_err(|message| Error::Usage {
            message: format!("manifest `{}`: {message}", path.display()),
            hint: Some("use the manifest exactly as `src-agent export` wrote it".into()),
        })?;
        Ok((manifest, fingerprint(&bytes)))
    }

    /// Parses manifest bytes; the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text ({e})"))?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        match value.get("schema").and_then(serde_json::Value::as_u64) {
            Some(v) if (u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&v) => {}
            Some(v) => {
                return Err(format!(
                    "schema version {v} is not known to this tgt-agent (it reads versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}): upgrade rds-handoff"
                ))
            }
            None => return Err("no numeric `schema` field: this is not an rds-handoff manifest".into()),
        }
        let manifest: Self = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let kind = match manifest.database.kind {
            DbKind::Instance => RdsIdKind::Instance,
            DbKind::Cluster => RdsIdKind::Cluster,
        };
        check_rds_id(kind, &manifest.database.identifier)
            .map_err(|e| format!("database.identifier: {e}"))?;
        manifest.database.check_fields()?;
        if manifest.target.region.as_ref() == Some(&manifest.source.region) {
            return Err("target.region: names the source's region; a handoff within one region leaves it out".into());
        }
        if manifest.snapshot.arn.region != manifest.snapshot_region().as_str() {
            return Err(format!(
                "snapshot.arn: `{}` is in region `{}`, and the manifest says the shared snapshot is in `{}`",
                manifest.snapshot.arn,
                manifest.snapshot.arn.region,
                manifest.snapshot_region()
            ));
        }
        Ok(manifest)
    }

    pub fn to_json(&self) -> String {
        // INVARIANT: the manifest holds only strings, numbers, bools and maps of strings.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the manifest atomically: a temp file beside it, then a rename.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }
}

/// A file's bytes, refused when larger than any file the toolkit writes (`what` names it).
pub fn read_bounded(path: &Path, what: &str) -> Result<Vec<u8>> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(&shown, e))?
        .len();
    if size > MAX_MANIFEST_BYTES {
        return Err(Error::usage(format!(
            "{what} `{shown}` is {size} bytes, larger than any {what} ({MAX_MANIFEST_BYTES} bytes at most)"
        )));
    }
    std::fs::read(path).map_err(|e| Error::io(&shown, e))
}

/// Writes a file so that readers see the old content or the new, never a part (manifests,
/// indexes, reports, state files). The temporary file beside it has an unpredictable name and
/// is created exclusively: a file or symlink someone planted in the folder is never written
/// through; then it is renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let shown = path.display();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut attempts = 0;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(".{name}.tmp-{:032x}", rand::random::<u128>()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 8 => {
                attempts += 1;
            }
            Err(e) => return Err(Error::io(tmp.display(), e)),
        }
    };
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(tmp.display(), e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(&shown, e)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        Manifest {
            schema: SCHEMA_WITHIN_REGION,
            tool_version: "0.1.0".into(),
            created_at: "2026-11-22T00:00:00Z".into(),
            source: SourceSide {
                account: "111111111111".parse().unwrap(),
                region: "us-east-1".parse().unwrap(),
                partition: "aws".into(),
            },
            target: TargetSide {
                account: "222222222222".parse().unwrap(),
                principal: None,
                region: None,
            },
            database: Database {
                kind: DbKind::Instance,
                identifier: "db1".into(),
                engine: "mysql".into(),
                engine_version: "8.0.36".into(),
                port: Some(3306),
                master_username: "admin".into(),
                database_name: None,
                instance_class: Some("db.t3.micro".into()),
                allocated_storage: Some(20),
                storage_type: Some("gp2".into()),
                iops: None,
                multi_az: false,
                iam_auth: false,
                tags: BTreeMap::from([("team".into(), "data".into())]),
                parameter_group: Some("default.mysql8.0".into()),
                option_group: None,
            },
            snapshot: SharedSnapshot {
                arn: "arn:aws:rds:us-east-1:111111111111:snapshot:rh-db1-222222222222"
                    .parse()
                    .unwrap(),
                encrypted: true,
                kms_key_arn: Some(
                    "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        .parse()
                        .unwrap(),
                ),
                source_encryption: Some(Encryption::KmsKey),
            },
            data: None,
        }
    }

    #[test]
    fn round_trip() {
        let manifest = sample();
        assert_eq!(
            Manifest::parse(manifest.to_json().as_bytes()).unwrap(),
            manifest
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let good = sample().to_json();
        let edit = |from: &str, to: &str| good.replacen(from, to, 1);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good.as_bytes()[..good.len() / 2].to_vec(), "not valid JSON"),
            (b"\xff\xfe{}".to_vec(), "not UTF-8"),
            (
                edit("\"schema\": 3", "\"schema\": 5").into_bytes(),
                "schema version 5",
            ),
            (
                edit("\"schema\": 3", "\"schema\": \"3\"").into_bytes(),
                "no numeric `schema`",
            ),
            (
                edit("\"engine\":", "\"engin\":").into_bytes(),
                "unknown field `engin`",
            ),
            (
                edit("\"account\": \"222222222222\"", "\"account\": \"2222\"").into_bytes(),
                "`2222`",
            ),
            (
                edit("\"port\": 3306", "\"port\": \"3306\"").into_bytes(),
                "invalid type",
            ),
            (
                edit(
                    "\"team\": \"data\"",
                    "\"aws:cloudformation:stack-name\": \"x\"",
                )
                .into_bytes(),
                "`aws:cloudformation:stack-name` is reserved",
            ),
            (
                edit(
                    "\"team\": \"data\"",
                    "\"rds-handoff:role\": \"restored-database\"",
                )
                .into_bytes(),
                "`rds-handoff:role` is reserved",
            ),
            (
                edit(
                    "\"master_username\": \"admin\"",
                    "\"master_username\": \"admin; drop\"",
                )
                .into_bytes(),
                "database.master_username",
            ),
            (
                edit(
                    "arn:aws:rds:us-east-1:111111111111:snapshot",
                    "arn:aws:rds:us-east-1:11111:snapshot",
                )
                .into_bytes(),
                "12 digits",
            ),
        ];
        for (bytes, expected) in cases {
            let err = Manifest::parse(&bytes).unwrap_err();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }

    #[test]
    fn a_cross_region_manifest_names_the_snapshots_region_and_agrees_with_its_arn() {
        let mut across = sample();
        across.schema = SCHEMA_VERSION;
        across.target.region = Some("us-west-2".parse().unwrap());
        let arn = across
            .snapshot
            .arn
            .as_str()
            .replace("us-east-1", "us-west-2");
        across.snapshot.arn = arn.parse().unwrap();
        let read = Manifest::parse(across.to_json().as_bytes()).unwrap();
        assert_eq!(read.snapshot_region().as_str(), "us-west-2");
        assert_eq!(sample().snapshot_region().as_str(), "us-east-1");
        let mut own = across.clone();
        own.target.region = Some("us-east-1".parse().unwrap());
        let err = Manifest::parse(own.to_json().as_bytes()).unwrap_err();
        assert!(err.contains("names the source's region"), "{err}");
        let mut elsewhere = across;
        elsewhere.target.region = Some("eu-west-1".parse().unwrap());
        let err = Manifest::parse(elsewhere.to_json().as_bytes()).unwrap_err();
        assert!(err.contains("is in region `us-west-2`, and the manifest says the shared snapshot is in `eu-west-1`"), "{err}");
    }

    #[test]
    fn a_version_1_manifest_without_the_source_encryption_is_still_read() {
        let v3 = sample().to_json();
        assert!(v3.contains("\"schema\": 3") && v3.contains("\"source_encryption\": \"sse-kms\""));
        let v1 = v3
            .replace("\"schema\": 3", "\"schema\": 1")
            .replace(",\n    \"source_encryption\": \"sse-kms\"", "");
        assert!(!v1.contains("source_encryption"), "{v1}");
        let read = Manifest::parse(v1.as_bytes()).unwrap();
        assert_eq!(read.schema, 1);
        assert_eq!(read.snapshot.source_encryption, None);
    }

    #[test]
    fn at_most_fifty_tags() {
        let mut manifest = sample();
        manifest.database.tags = (0..51).map(|n| (format!("k{n}"), "v".into())).collect();
        let err = Manifest::parse(manifest.to_json().as_bytes()).unwrap_err();
        assert!(err.contains("51 tags"), "{err}");
        manifest.database.tags.remove("k0");
        assert!(Manifest::parse(manifest.to_json().as_bytes()).is_ok());
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("rh-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db1.handoff.json");
        sample().write(&path).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), sample());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A symlink planted where a temporary file could be expected is never written through.
    #[cfg(unix)]
    #[test]
    fn atomic_write_never_follows_a_planted_temp_file() {
        let dir = std::env::temp_dir().join(format!("rh-planted-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let path = dir.join("db1.handoff.json");
        let planted = dir.join(format!(".db1.handoff.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomic(&path, b"{}").unwrap();
        write_atomic(&path, b"{\"again\": 1}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"again\": 1}");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let planted_name = format!(".db1.handoff.json.tmp-{}", std::process::id());
        assert_eq!(
            names,
            [planted_name.as_str(), "db1.handoff.json", "victim"],
            "one temporary name per write, none left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
