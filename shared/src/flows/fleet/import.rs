//! `tgt-agent import` of several manifests, or of the index that lists them.
//!
//! Everything local is checked for every manifest before the first AWS call (the index's
//! SHA-256, each manifest's against its line, the trusted source, the placement flags): one
//! manifest that fails those checks stops the whole run, since it was not what the source
//! admin sent. After that, each database is imported on its own and one failing does not
//! stop the others.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::index::Index;
use super::{
    admit, batched, one, poll_rounds, room_need, run_all, say_limits, take_room, workers, Batches,
    Done, Member, Summary,
};
use crate::aws::slots::Need;
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::manifest::{fingerprint, read_bounded};
use crate::base::progress::{DatabaseLine, Printer};
use crate::flows::import::{aws_args_for, check_sha256, import, ImportArgs, ImportPlan};
use crate::workflow::Workflow;

impl ImportArgs {
    /// Whether this import is a fleet: several manifests, or an index.
    pub fn is_fleet(&self) -> bool {
        match self.check.manifests.as_slice() {
            [one] => read_bounded(one, "manifest").is_ok_and(|b| Index::looks_like(&b)),
            _ => true,
        }
    }
}

/// Each manifest to import with the SHA-256 it must have: from the index (itself checked
/// against `--manifest-sha256`), or, for manifests named one by one, the given SHA-256 it
/// matches.
pub fn handoffs(args: &ImportArgs) -> Result<Vec<(PathBuf, Option<String>)>> {
    args.check.require_fingerprint()?;
    let given = args
        .check
        .manifest_sha256
        .iter()
        .map(|hex| check_sha256(hex))
        .collect::<Result<Vec<_>>>()?;
    if let [path] = args.check.manifests.as_slice() {
        return from_index(path, &given);
    }
    args.check
        .manifests
        .iter()
        .map(|path| {
            if given.is_empty() {
                return Ok((path.clone(), None));
            }
            let found = fingerprint(&read_bounded(path, "manifest")?);
            if !given.contains(&found) {
                return Err(Error::refused(
                    format!("the SHA-256 of `{}` is `{found}`, none of the `--manifest-sha256` given: it is not a manifest the source admin exported", path.display()),
                    "ask the source admin for the manifests and their SHA-256 (or the index's) again, on two different channels; do not import these",
                ));
            }
            Ok((path.clone(), Some(found)))
        })
        .collect()
}

fn from_index(path: &Path, given: &[String]) -> Result<Vec<(PathBuf, Option<String>)>> {
    let (index, found) = Index::read(path)?;
    match given {
        [] => {}
        [expected] if *expected == found => {}
        [expected] => {
            return Err(Error::refused(
                format!("the index's SHA-256 is `{found}`, not `{expected}` (`--manifest-sha256`): it is not the index the source admin exported"),
                "ask the source admin for the index and its SHA-256 again, on two different channels; do not import it",
            ))
        }
        _ => return Err(Error::usage("an index takes one `--manifest-sha256`: the index's")),
    }
    Ok(index
        .manifests(path)
        .into_iter()
        .map(|(path, sha)| (path, Some(sha)))
        .collect())
}

/// The plan of every manifest, all checked before any AWS call.
pub fn plans(args: &ImportArgs) -> Result<Vec<ImportPlan>> {
    if args.check.db_identifier.is_some() || args.check.secret_name.is_some() {
        return Err(Error::usage(
            "`--db-identifier` and `--secret-name` name one database's; this import has several",
        ));
    }
    let plans = handoffs(args)?
        .into_iter()
        .map(|(path, sha)| {
            let mut one = args.clone();
            one.check.manifests = vec![path];
            one.check.manifest_sha256 = sha.into_iter().collect();
            one.resolve()
        })
        .collect::<Result<Vec<_>>>()?;
    let mut names = BTreeSet::new();
    if let Some(twice) = plans.iter().find(|p| !names.insert(p.db.clone())) {
        return Err(Error::usage(format!(
            "two manifests restore into `{}`: import them one at a time with `--db-identifier`",
            twice.db
        )));
    }
    let regions: BTreeSet<_> = plans
        .iter()
        .map(|p| p.manifest.snapshot_region().to_string())
        .collect();
    if regions.len() > 1 {
        let regions: Vec<String> = regions.into_iter().collect();
        return Err(Error::usage(format!(
            "the manifests' shared snapshots are in several regions ({}); a shared snapshot is imported in its own region: run one import per region",
            regions.join(", ")
        )));
    }
    if plans.is_empty() {
        return Err(Error::usage("the index lists no manifest"));
    }
    Ok(plans)
}

/// Imports every manifest; each writes its own report.
pub async fn import_all(
    args: &ImportArgs,
    given: &crate::aws::AwsArgs,
    printer: &Printer,
) -> Result<Summary> {
    if args.db.db_endpoint.is_some() {
        return Err(Error::Usage {
            message: "`--db-endpoint` names one database's tunnel; this import names several".into(),
            hint: Some("leave it out (each restored database is reached at its endpoint), or import each manifest on its own with its tunnel".into()),
        });
    }
    let plans = plans(args)?;
    let mut aws = Aws::connect(&aws_args_for(&plans[0], given, printer)).await?;
    aws.identify(printer).await?;
    let listed = crate::aws::rds::list_all(&aws).await?;
    let kinds: Vec<_> = plans.iter().map(|p| p.kind).collect();
    aws.copies = crate::aws::quota::fleet_slots(
        &listed,
        &aws.region,
        args.max_parallel.map(usize::from),
        &kinds,
    )?;
    let aws = &aws;
    let batched = batched(&args.engine, args.dry_run);
    // Each import's copy of the shared snapshot lives until its database is restored.
    let temporary = room_need(
        Need {
            kept: 0,
            temporary: true,
        },
        batched,
    );
    let members = plans
        .iter()
        .map(|p| {
            let gib = p.manifest.database.allocated_storage.unwrap_or(0);
            let member = Member {
                kind: p.kind,
                id: p.db.clone(),
                gib,
            };
            (member, temporary)
        })
        .collect();
    let (members, rooms, mut outcomes) = admit(aws, members, printer).await;
    say_limits(aws, members.len(), printer);
    let batches = Batches::new(aws, batched, Workflow::Import, &members);
    let run = |member: Member| async {
        let room = rooms.get(&member.id).cloned().flatten();
        let plan = plans.iter().find(|p| p.db == member.id);
        one(member, printer, async |m: &Member, line: &DatabaseLine| {
            let plan = plan.ok_or_else(|| Error::usage("no plan for this database"))?;
            let _room = take_room(room).await;
            batches
                .run(aws, &args.engine, m, line, async |engine| {
                    let mut plan = plan.clone();
                    plan.args.engine = engine;
                    import_one(aws, &plan, line).await
                })
                .await
        })
        .await
    };
    outcomes.extend(
        run_all(
            &aws.budget,
            members,
            workers(&aws.copies, batched),
            printer,
            run,
        )
        .await,
    );
    outcomes.sort_by(|a, b| a.database.cmp(&b.database));
    let mut after = vec![];
    if args.dry_run {
        after.push("dry run: nothing was changed".to_owned());
    }
    let requests = aws.request_reports();
    let json = serde_json::json!({
        "event": "done",
        "dry_run": args.dry_run,
        "databases": &outcomes,
        "failed": outcomes.iter().filter(|o| o.failed()).count(),
        "requests": &requests,
        "poll_rounds": poll_rounds(aws),
    });
    Ok(Summary {
        outcomes,
        after,
        json,
        dry_run: args.dry_run,
        requests,
    })
}

async fn import_one(aws: &Aws, plan: &ImportPlan, line: &DatabaseLine) -> Result<Done> {
    let report = import(aws, plan, line).await?;
    let result = match (plan.args.dry_run, report.already_done) {
        (_, true) => "already imported",
        (true, false) => "would import",
        (false, false) => "imported",
    };
    Ok(Done {
        result,
        file: (!plan.args.dry_run).then(|| plan.report_path.display().to_string()),
        sha256: None,
    })
}
