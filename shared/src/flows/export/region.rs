//! A handoff into another region (`--target-region`, DOMAIN.md §11), by the path AWS
//! documents end to end: the snapshot is taken in the source's region, copied into the
//! destination region under a key of this account there (its target statements narrowed to
//! RDS in that region), and shared there; the target copies it within that region.
//!
//! What this path cannot serve is refused before anything is made.

use crate::aws::kms::KeyChoice;
use crate::aws::rds::{self, DbInfo};
use crate::aws::{Aws, Caller};
use crate::base::error::{Error, Result};
use crate::base::manifest::Manifest;
use crate::base::names::ExportNames;
use crate::base::state::{self, Headed, State};
use crate::base::vocabulary::{DbKind, Encryption};
use crate::flows::preflight;
use crate::ident::Region;
use crate::workflow::{Op, Step};

use super::ExportPlan;

/// The plan as this run carries it out: a `--target-region` that is the source's own is no
/// crossing; a crossing has names and a default key alias of its own (apart from those of a
/// handoff of a database of the same name within the target region), and says where the
/// database is.
pub(super) fn within(plan: &ExportPlan, aws: &Aws, caller: &Caller) -> ExportPlan {
    let mut plan = plan.clone();
    if plan.target_region.as_ref() == Some(&aws.region) {
        plan.target_region = None;
    }
    let Some(to) = &plan.target_region else {
        return plan;
    };
    let from = aws.region.as_str();
    let target = plan.target.as_str();
    plan.names = ExportNames::across(
        plan.kind.snapshot_kind(),
        &plan.db,
        target,
        from,
        to.as_str(),
    );
    if !plan.key_named {
        plan.key = KeyChoice::Alias(format!("alias/rds-handoff/{}-from-{from}", plan.db));
    }
    plan.source_region = Some(aws.region.clone());
    let source = plan
        .from_snapshot
        .as_ref()
        .unwrap_or(&plan.names.intermediate);
    plan.copied_from = Some(source_arn(&plan, aws, caller, source));
    plan
}

/// Refuses regions AWS copies no snapshot between: another partition, a China region, and
/// GovCloud (whose copies need a presigned URL the toolkit does not make); DOMAIN.md §11.
pub fn refuse_unreachable(aws: &Aws, to: &Region) -> Result<()> {
    let from = &aws.region;
    let partition = crate::aws::partition_of(to);
    let reason = if partition != aws.partition {
        format!(
            "`{to}` is in partition `{partition}`, and `{from}` in `{}`",
            aws.partition
        )
    } else if partition != "aws" {
        format!("the toolkit copies across regions in the commercial partition only, and `{to}` is in `{partition}`")
    } else {
        return Ok(());
    };
    Err(Error::Usage {
        message: format!("no cross-region handoff from `{from}` to `{to}`: {reason}"),
        hint: Some("AWS copies no snapshot to or from the China regions, and GovCloud's copies stay within GovCloud; hand it off within one region".into()),
    })
}

/// Refuses a run whose manifest path belongs to a handoff of this database made elsewhere
/// (its manifest says so, or before it is written its state file): this run would write
/// over that manifest, and leave the copy shared there with no manifest that names it.
pub(super) fn refuse_other_destination(plan: &ExportPlan, there: &Aws) -> Result<()> {
    let path = &plan.manifest_path;
    let source = plan
        .source_region
        .as_ref()
        .unwrap_or(&there.region)
        .as_str();
    let written = Manifest::read(path)
        .ok()
        .filter(|m| m.database.identifier == plan.db);
    let before = match &written {
        Some(m) => Headed {
            source_region: m.source.region.to_string(),
            target_account: m.target.account.to_string(),
            destination: m.snapshot_region().to_string(),
        },
        None => match recorded(plan, source) {
            Some(before) => before,
            None => return Ok(()),
        },
    };
    let now = Headed {
        source_region: source.to_owned(),
        target_account: plan.target.to_string(),
        destination: there.region.to_string(),
    };
    if before == now {
        return Ok(());
    }
    let Headed {
        source_region: from,
        target_account: target,
        destination: to,
    } = &before;
    let mut flags = vec![
        format!("`--region {from}`"),
        format!("`--target-account {target}`"),
    ];
    flags.push(match to == from {
        true => "no `--target-region`".to_owned(),
        false => format!("`--target-region {to}`"),
    });
    let flags = flags.join(", ");
    let shown = path.display();
    let end = match (&written, to == from) {
        (Some(_), _) => format!(
            "`src-agent revoke {shown} --region {from} --delete-snapshot`, then `src-agent cleanup {shown} --region {from}`"
        ),
        (None, true) => format!(
            "finish it, then `src-agent revoke {shown} --region {from} --delete-snapshot`; if its copy was never shared, `src-agent cleanup --db {} --region {from}` is enough",
            plan.db
        ),
        (None, false) => format!(
            "finish it, then `src-agent revoke {shown} --region {from} --delete-snapshot`; if its copy was never shared, `src-agent cleanup --db {} --region {from} --target-region {to}` is enough",
            plan.db
        ),
    };
    Err(Error::refused(
        format!(
            "`{shown}` belongs to the handoff of {} `{}` from `{from}` to account {target} in `{to}`, and this run would hand it off from `{}` to account {} in `{}`",
            plan.kind.name(),
            plan.db,
            now.source_region,
            now.target_account,
            now.destination
        ),
        format!(
            "re-run with that handoff's own {flags} to finish or see it: it repeats nothing; to end it, {end}; once it has ended, move `{shown}` and its state file `{}` away; or hand this one off with `--manifest` naming another path",
            state::path_beside(path).display()
        ),
    ))
}

/// Where an unfinished export of this database recorded it goes, in its state file; a file
/// written before it said so tells from the names it recorded: an intermediate across
/// regions names the target and its region, the key it made is made where the copy is
/// (the rest taken to be this run's).
fn recorded(plan: &ExportPlan, source: &str) -> Option<Headed> {
    let state = State::read(&state::path_beside(&plan.manifest_path));
    if state.run != "export" || state.database != plan.db {
        return None;
    }
    if let Some(headed) = state.headed {
        return Some(headed);
    }
    let mut headed = Headed {
        source_region: source.to_owned(),
        target_account: plan.target.to_string(),
        destination: String::new(),
    };
    let named = state
        .created
        .iter()
        .find_map(|c| ExportNames::intermediate_parts(&c.id));
    if let Some((target, region)) = named {
        headed.target_account = target.to_owned();
        headed.destination = region.to_owned();
        return Some(headed);
    }
    let key = state
        .created
        .iter()
        .filter(|c| c.kind == "kms-key")
        .find_map(|c| c.id.parse::<crate::ident::Arn>().ok())?;
    headed.destination = key.region;
    Some(headed)
}

/// A key named for a cross-region export is looked up in the target region: the hint says so.
pub(super) fn key_hint(plan: &ExportPlan, err: Error) -> Error {
    match (err, &plan.target_region) {
        (Error::Refused { message, .. }, Some(region)) => Error::refused(
            message,
            format!("with `--target-region {region}`, `--kms-key-id` names a key in `{region}` (KMS keys are regional): make or pick one there"),
        ),
        (err, _) => err,
    }
}

/// Refuses, before anything is made, what a cross-region export cannot do (`there`: the
/// target region's clients).
pub(super) async fn refuse_unserved(
    plan: &ExportPlan,
    there: &Aws,
    db: &DbInfo,
    source: Encryption,
) -> Result<()> {
    let Some(region) = &plan.target_region else {
        return Ok(());
    };
    crate::workflow::refuse_state_machine_in(plan.engine.engine, Some(region))?;
    let through_temp_cluster = plan.kind == DbKind::Cluster
        && (source == Encryption::AwsOwnedKey
            || (source == Encryption::None && plan.encrypt_at_source));
    if through_temp_cluster {
        let unencrypted = if source == Encryption::None {
            " (or pass `--allow-unencrypted-share` instead of `--encrypt-at-source`: its snapshot is copied into that region as it is, and the target's restore encrypts it)"
        } else {
            ""
        };
        return Err(Error::refused(
            format!(
                "DB cluster `{}` goes under a key through a temporary cluster restored in this region, and a cross-region export copies under a key in `{region}` only",
                plan.db
            ),
            format!(
                "hand it off within this region (without `--target-region`); the target account can then move its restored cluster into `{region}` on its own{unencrypted}"
            ),
        ));
    }
    if plan.kind == DbKind::Instance {
        check_option_group(plan, there, db, region).await?;
    }
    Ok(())
}

/// A DB instance with an option group of its own is copied into another region only with an
/// option group there: the one named, which must exist.
async fn check_option_group(
    plan: &ExportPlan,
    there: &Aws,
    db: &DbInfo,
    region: &Region,
) -> Result<()> {
    let create = format!(
        "`aws rds create-option-group --region {region}`, then `aws rds add-option-to-option-group`"
    );
    if let Some(group) = &plan.target_option_group {
        preflight::option_group_exists(there, group)
            .await
            .map_err(|err| match err {
                Error::Refused { message, .. } => Error::refused(
                    message,
                    format!("pass `--target-option-group-name` with a group that exists in `{region}`, or make one with the source's options ({create})"),
                ),
                err => err,
            })?;
        // Its copy would take these options, and AWS shares no such snapshot.
        let options = rds::unshareable_options(there, group).await?;
        if !options.is_empty() {
            return Err(Error::refused(
                format!("option group `{group}` in `{region}` has persistent or permanent options ({}): AWS does not share a snapshot that has them", options.join(", ")),
                format!("name an option group in `{region}` without them"),
            ));
        }
        return Ok(());
    }
    let Some(group) = db
        .database
        .option_group
        .as_deref()
        .filter(|g| !is_default(g))
    else {
        return Ok(());
    };
    Err(Error::refused(
        format!(
            "DB instance `{}` uses option group `{group}`, and AWS copies a snapshot with a non-default option group into another region only with an option group of that region",
            plan.db
        ),
        format!(
            "pass `--target-option-group-name` with an option group in `{region}` that has the same options ({create})"
        ),
    ))
}

/// RDS's own option groups (`default:mysql-8-0`) exist in every region.
fn is_default(group: &str) -> bool {
    group.starts_with("default:") || group.starts_with("default.")
}

/// The export's steps as a cross-region export runs them: the copy made in the destination
/// region (called there, its source named by ARN, with the option group given) and the share
/// made there; the rest where the database is. Within one region, unchanged.
pub(super) fn placed(plan: &ExportPlan, steps: Vec<Step>) -> Vec<Step> {
    let (Some(region), Some(from)) = (&plan.target_region, &plan.copied_from) else {
        return steps;
    };
    let there = Some(region.clone());
    steps
        .into_iter()
        .map(|mut step| match &mut step.op {
            Op::Copy {
                source,
                option_group,
                ..
            } => {
                from.clone_into(source);
                if plan.kind == DbKind::Instance {
                    option_group.clone_from(&plan.target_option_group);
                }
                step.in_region(there.clone())
            }
            Op::Share { .. } => step.in_region(there.clone()),
            _ => step,
        })
        .collect()
}

/// The ARN of this account's snapshot `id` where the database is: how a cross-region copy
/// names its source, as AWS requires, and how AWS then says the copy was made from it.
fn source_arn(plan: &ExportPlan, aws: &Aws, caller: &Caller, id: &str) -> String {
    let resource = match plan.kind {
        DbKind::Instance => "snapshot",
        DbKind::Cluster => "cluster-snapshot",
    };
    format!(
        "arn:{}:rds:{}:{}:{resource}:{id}",
        aws.partition, aws.region, caller.account
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_default_option_groups_are_in_every_region_and_others_are_not() {
        assert!(is_default("default:mysql-8-0"));
        assert!(!is_default("shop-options"));
    }
}
