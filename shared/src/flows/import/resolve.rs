//! The plan of one import, resolved from the arguments and the manifest before AWS is asked:
//! the manifest's SHA-256 as received on another channel, its source pinned to the account
//! the operator trusts, and the names and ids the operator typed.

use std::path::{Path, PathBuf};

use crate::aws::kms::KeyChoice;
use crate::aws::wait::WaitPolicy;
use crate::base::error::{Error, Result};
use crate::base::manifest::Manifest;
use crate::base::names::{bounded, writer_instance};
use crate::ident::{check_rds_id, AccountId};

use super::{ImportArgs, ImportPlan, SOURCE_ACCOUNT_SETTING};

impl ImportArgs {
    /// Reads the manifest and checks what can be checked without AWS, the source it comes
    /// from first.
    pub fn resolve(&self) -> Result<ImportPlan> {
        trusted_account(self.check.source_account.as_ref())?;
        self.check.require_fingerprint()?;
        let [path] = self.check.manifests.as_slice() else {
            return Err(Error::usage(
                "several manifests are imported as a fleet, one at a time by `resolve`",
            ));
        };
        let manifest = trusted_manifest(
            path,
            self.check.source_account.as_ref(),
            &self.check.manifest_sha256,
        )?;
        let kind = manifest.database.kind;
        let db = check_rds_id(
            kind.id_kind(),
            self.check
                .db_identifier
                .as_deref()
                .unwrap_or(&manifest.database.identifier),
        )?;
        if let Some(bad) = self
            .check
            .vpc_security_group_ids
            .iter()
            .find(|sg| !is_security_group_id(sg))
        {
            return Err(Error::usage(format!(
                "`{bad}` is not a security group id like `sg-0123456789abcdef0`"
            )));
        }
        if self.check.db_subnet_group.is_empty() || self.check.db_subnet_group.len() > 255 {
            return Err(Error::usage(
                "`--db-subnet-group-name` must be 1 to 255 characters",
            ));
        }
        Ok(ImportPlan {
            kind,
            writer: writer_instance(&db),
            copy: bounded(kind.snapshot_kind(), &db, "imported"),
            key: match &self.check.kms_key {
                Some(key) => KeyChoice::Given(key.clone()),
                None => KeyChoice::Alias(format!("alias/rds-handoff/imported/{db}")),
            },
            secret_name: self
                .check
                .secret_name
                .clone()
                .unwrap_or_else(|| format!("rds-handoff/{db}/master")),
            report_path: PathBuf::from(format!("{db}.import.json")),
            wait: WaitPolicy::new(self.wait_timeout),
            db,
            manifest,
            args: self.clone(),
        })
    }
}

/// The manifest at `path`, read and checked without AWS: its SHA-256 against the one received
/// on another channel (none: waived, said by the caller), and its source pinned to the account
/// the operator trusts.
pub fn trusted_manifest(
    path: &Path,
    trusted: Option<&AccountId>,
    sha256: &[String],
) -> Result<Manifest> {
    let trusted = trusted_account(trusted)?;
    let expected = match sha256 {
        [] => None,
        [one] => Some(check_sha256(one)?),
        _ => return Err(Error::usage("one manifest takes one `--manifest-sha256`")),
    };
    let (manifest, fingerprint) = Manifest::read_fingerprinted(path)?;
    if let Some(expected) = expected.filter(|e| *e != fingerprint) {
        return Err(Error::refused(
            format!(
                "the SHA-256 of `{}` is `{fingerprint}`, not `{expected}` (`--manifest-sha256` or the index): it is not the manifest the source admin exported",
                path.display()
            ),
            "ask the source admin for the manifest and its SHA-256 again, on two different channels; do not import this one",
        ));
    }
    pin_source(&manifest, trusted)?;
    Ok(manifest)
}

/// The source account the operator trusts, required first: a manifest cannot vouch for its
/// own source.
fn trusted_account(trusted: Option<&AccountId>) -> Result<&AccountId> {
    trusted.ok_or_else(|| Error::Usage {
        message: "no source account to trust: a manifest cannot vouch for its own source".into(),
        hint: Some(format!("pass `--source-account ACCOUNT` (the account you expect the database from, confirmed with its admin), set `RDS_HANDOFF_SOURCE_ACCOUNT`, or put `{SOURCE_ACCOUNT_SETTING} = ACCOUNT` in your AWS profile")),
    })
}

/// A SHA-256 in hex, as `sha256sum` prints it.
pub fn check_sha256(value: &str) -> Result<String> {
    let hex = value.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(hex);
    }
    Err(Error::usage(format!(
        "`--manifest-sha256 {value}` is not a SHA-256: 64 hexadecimal characters"
    )))
}

/// Refuses a manifest whose source, snapshot or key is in another account than the one the
/// operator expects: the manifest cannot vouch for itself.
fn pin_source(manifest: &Manifest, expected: &AccountId) -> Result<()> {
    let key = manifest.snapshot.kms_key_arn.as_ref();
    let claims = [
        (
            "the manifest's source account",
            Some(&manifest.source.account),
        ),
        (
            "the shared snapshot's account",
            manifest.snapshot.arn.account.as_ref(),
        ),
        (
            "the snapshot key's account",
            key.and_then(|k| k.account.as_ref()),
        ),
    ];
    for (what, account) in claims {
        let Some(account) = account else {
            if what == "the snapshot key's account" && key.is_none() {
                continue;
            }
            return Err(Error::refused(
                format!("{what} is missing from the manifest"),
                "use the manifest exactly as `src-agent export` wrote it",
            ));
        };
        if account != expected {
            return Err(Error::refused(
                format!(
                    "{what} is `{account}`, but you expect the database from `{expected}` (`--source-account`): nothing was imported"
                ),
                format!("if `{account}` really is the source, confirm it with its admin on another channel than the manifest and pass `--source-account {account}`; otherwise discard this manifest"),
            ));
        }
    }
    Ok(())
}

fn is_security_group_id(value: &str) -> bool {
    value.strip_prefix("sg-").is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_group_ids() {
        assert!(is_security_group_id("sg-0123456789abcdef0"));
        assert!(is_security_group_id("sg-12345678"));
        for bad in ["sg-", "0123", "sg-xyz12345", "sg-0123456789abcdef01"] {
            assert!(!is_security_group_id(bad), "{bad}");
        }
    }
}
