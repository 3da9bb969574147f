//! What a run checks before it creates anything, and a dry run checks the same way: every
//! name the operator gave exists in this account and region and fits with the others, and
//! the files the run will write can be written. A typo fails here, not after an hour's copy.

use std::path::Path;

use crate::aws::kms;
use crate::aws::Aws;
use crate::base::error::{sdk, Error, Result};
use crate::base::vocabulary::DbKind;

/// The VPC of a DB subnet group that must exist here.
pub async fn subnet_group_vpc(aws: &Aws, name: &str) -> Result<String> {
    let found = aws
        .rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await
        .map_err(sdk("rds:DescribeDBSubnetGroups"));
    match found {
        Ok(out) => Ok(out
            .db_subnet_groups()
            .first()
            .and_then(|g| g.vpc_id())
            .unwrap_or_default()
            .to_owned()),
        Err(err) if err.aws_code() == Some("DBSubnetGroupNotFoundFault") => Err(Error::refused(
            format!(
                "DB subnet group `{name}` does not exist in this account and region `{}`",
                aws.region
            ),
            "create it (`aws rds create-db-subnet-group`) or pass another `--db-subnet-group-name`",
        )),
        Err(err) => Err(err),
    }
}

/// Every security group exists here and is in `vpc` (the subnet group's).
pub async fn security_groups_in(aws: &Aws, ids: &[String], vpc: &str) -> Result<()> {
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    let found = aws
        .ec2
        .describe_security_groups()
        .set_group_ids(Some(unique))
        .send()
        .await
        .map_err(sdk("ec2:DescribeSecurityGroups"));
    let groups = match found {
        Ok(out) => out.security_groups().to_vec(),
        Err(err) if err.aws_code() == Some("InvalidGroup.NotFound") => {
            return Err(Error::refused(
                format!(
                    "security group(s) `{}` not found in this account and region `{}`: {err}",
                    ids.join(", "),
                    aws.region
                ),
                "check `--vpc-security-group-ids` (`aws ec2 describe-security-groups`)",
            ))
        }
        Err(err) => return Err(err),
    };
    for id in ids {
        match groups.iter().find(|g| g.group_id() == Some(id.as_str())) {
            None => {
                return Err(Error::refused(
                    format!("security group `{id}` not found in this account and region `{}`", aws.region),
                    "check `--vpc-security-group-ids` (`aws ec2 describe-security-groups`)",
                ))
            }
            Some(group) if !vpc.is_empty() && group.vpc_id() != Some(vpc) => {
                return Err(Error::refused(
                    format!(
                        "security group `{id}` is in VPC `{}`, but the DB subnet group is in VPC `{vpc}`",
                        group.vpc_id().unwrap_or("?")
                    ),
                    "pass security groups of the subnet group's VPC, or a subnet group in theirs",
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A DB parameter group (instances) or DB cluster parameter group (clusters) that must exist.
pub async fn parameter_group_exists(aws: &Aws, kind: DbKind, name: &str) -> Result<()> {
    let found = match kind {
        DbKind::Instance => aws
            .rds
            .describe_db_parameter_groups()
            .db_parameter_group_name(name)
            .send()
            .await
            .map(|out| !out.db_parameter_groups().is_empty())
            .map_err(sdk("rds:DescribeDBParameterGroups")),
        DbKind::Cluster => aws
            .rds
            .describe_db_cluster_parameter_groups()
            .db_cluster_parameter_group_name(name)
            .send()
            .await
            .map(|out| !out.db_cluster_parameter_groups().is_empty())
            .map_err(sdk("rds:DescribeDBClusterParameterGroups")),
    };
    let not_found = |err: &Error| {
        err.aws_code()
            .is_some_and(|c| c.starts_with("DBParameterGroupNotFound"))
    };
    match found {
        Ok(true) => Ok(()),
        Err(err) if !not_found(&err) => Err(err),
        _ => Err(Error::refused(
            format!(
                "{} parameter group `{name}` does not exist in this account and region `{}`",
                kind.name(),
                aws.region
            ),
            "create it or pass another `--db-parameter-group-name`",
        )),
    }
}

/// An option group that must exist.
pub async fn option_group_exists(aws: &Aws, name: &str) -> Result<()> {
    let found = aws
        .rds
        .describe_option_groups()
        .option_group_name(name)
        .send()
        .await
        .map_err(sdk("rds:DescribeOptionGroups"));
    match found {
        Ok(out) if !out.option_groups_list().is_empty() => Ok(()),
        Err(err)
            if !err
                .aws_code()
                .is_some_and(|c| c.starts_with("OptionGroupNotFound")) =>
        {
            Err(err)
        }
        _ => Err(Error::refused(
            format!(
                "option group `{name}` does not exist in this account and region `{}`",
                aws.region
            ),
            "create it or pass another `--option-group-name`",
        )),
    }
}

/// A KMS key the operator named, usable here (exists and is enabled).
pub async fn key_exists(aws: &Aws, key: &str) -> Result<()> {
    match kms::describe(aws, key).await? {
        Some(_) => Ok(()),
        None => Err(Error::refused(
            format!(
                "KMS key `{key}` not found in this account and region `{}`",
                aws.region
            ),
            "check `--kms-key-id` and `--region`",
        )),
    }
}

/// The folder a file will be written to accepts a new file (probed, then removed).
pub fn writable(path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = dir.join(format!(".rds-handoff-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| Error::Usage {
        message: format!("`{}` cannot be written: {e}", path.display()),
        hint: Some(
            "write it to a folder you can write to (`--manifest`, `--manifest-dir`, or run from another folder); nothing was created"
                .into(),
        ),
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
