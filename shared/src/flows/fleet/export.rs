//! `src-agent export` of several databases: selection, the room each needs, the index.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::index::{manifest_file, shared_ids, Entry, Index, INDEX_FILE, INDEX_SCHEMA};
use super::{
    admit, batched, one, poll_rounds, room_need, run_all, say_limits, take_room, workers, Batches,
    Done, Member, Outcome, Summary,
};
use crate::aws::rds::{self, Listed};
use crate::aws::slots::{Need, Room};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::names::ExportNames;
use crate::base::progress::{DatabaseLine, Printer};
use crate::base::vocabulary::DbKind;
use crate::flows::export::{export, now, refuse_own_account, ExportArgs, Selection, TAG_ROLE};
use crate::ident::Region;
use crate::workflow::{EngineArgs, Workflow};

/// The databases a selection names, each once: named ones as given; tagged ones and `--all`
/// from the listing, a cluster's member instances as their cluster, never a database the
/// toolkit made (a temporary cluster).
pub fn select(selection: &Selection, listed: &[Listed]) -> Vec<Member> {
    let size = |kind: &str, id: &str| {
        listed
            .iter()
            .find(|l| l.kind == kind && l.id == id)
            .map_or(0, |l| l.allocated_gib)
    };
    let mut chosen: BTreeMap<(String, &'static str), Member> = BTreeMap::new();
    let mut add = |kind: DbKind, id: &str| {
        let name = rds::database_kind(kind);
        chosen
            .entry((id.to_owned(), name))
            .or_insert_with(|| Member {
                kind,
                id: id.to_owned(),
                gib: size(name, id),
            });
    };
    for id in &selection.db_instance {
        add(DbKind::Instance, id.as_str());
    }
    for id in &selection.db_cluster {
        add(DbKind::Cluster, id.as_str());
    }
    let wanted = |l: &Listed| {
        selection.all
            || (!selection.tag.is_empty()
                && selection.tag.iter().all(|(k, v)| l.tags.get(k) == Some(v)))
    };
    for l in listed.iter().filter(|l| !l.tags.contains_key(TAG_ROLE)) {
        match (l.kind, &l.cluster) {
            ("db-instance", Some(cluster)) if wanted(l) => add(DbKind::Cluster, cluster),
            ("db-instance", None) if wanted(l) => add(DbKind::Instance, &l.id),
            ("db-cluster", _) if wanted(l) => add(DbKind::Cluster, &l.id),
            _ => {}
        }
    }
    chosen.into_values().collect()
}

/// The names an export of `member` from region `from` into region `to` uses.
fn names_of(member: &Member, args: &ExportArgs, from: &Region, to: &Region) -> ExportNames {
    let (kind, target) = (member.kind.snapshot_kind(), args.target_account.as_str());
    if from == to {
        return ExportNames::new(kind, &member.id, target);
    }
    ExportNames::across(kind, &member.id, target, from.as_str(), to.as_str())
}

/// What an export of `member` needs of the manual snapshot quota, from the listings of the
/// shared copies' region (`there`) and the database's (`here`: the same one, unless the
/// export crosses regions): its shared copy (kept) unless it exists, and an intermediate
/// snapshot for a while unless the copy or the intermediate exists.
fn need(member: &Member, names: &ExportNames, there: &[Listed], here: &[Listed]) -> Need {
    let kind = rds::snapshot_kind(member.kind);
    let exists = |listed: &[Listed], id: &str| listed.iter().any(|l| l.kind == kind && l.id == id);
    let shared = exists(there, &names.shared);
    Need {
        kept: usize::from(!shared),
        temporary: !shared && !exists(here, &names.intermediate),
    }
}

/// Exports every selected database; writes each manifest and the index in `--manifest-dir`.
pub async fn export_all(aws: &Aws, args: &ExportArgs, printer: &Printer) -> Result<Summary> {
    if args.manifest.is_some() || args.from_snapshot.is_some() || args.key.key_alias.is_some() {
        return Err(Error::Usage {
            message: "`--manifest`, `--from-snapshot` and `--key-alias` name one database's file, snapshot and key; this export names several".into(),
            hint: Some("leave them out (each database gets its own manifest in `--manifest-dir` and its own key), or pass `--kms-key-id` to use one existing key for all".into()),
        });
    }
    if args.db.db_endpoint.is_some() || args.db_secret.is_some() {
        return Err(Error::Usage {
            message: "`--db-endpoint` and `--db-secret` name one database's tunnel and login; this export names several".into(),
            hint: Some("leave them out (each database is reached at its endpoint and logged in to with its RDS-managed master secret), or export each database on its own with its tunnel and secret".into()),
        });
    }
    let dir = args
        .manifest_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let index_path = dir.join(INDEX_FILE);
    if !args.dry_run {
        std::fs::create_dir_all(&dir).map_err(|e| Error::Usage {
            message: format!("`--manifest-dir {}` cannot be made: {e}", dir.display()),
            hint: Some(
                "pass `--manifest-dir` with a folder you can write to; nothing was created".into(),
            ),
        })?;
    }
    // A dry run makes no folder: it checks the nearest one that exists.
    let folder = dir
        .ancestors()
        .find(|d| d.as_os_str().is_empty() || d.exists());
    crate::flows::preflight::writable(&folder.unwrap_or(&dir).join(INDEX_FILE))?;
    let caller = aws.identify(printer).await?;
    refuse_own_account(&caller.account, &args.target_account)?;
    let listed = rds::list_all(aws).await?;
    let members = select(&args.selection, &listed);
    if members.is_empty() {
        return Err(Error::refused(
            "no DB instance or cluster of this region matches the selection",
            "list them with `aws rds describe-db-instances` / `describe-db-clusters`, and check `--tag KEY=VALUE` and `--region`",
        ));
    }
    let kinds: Vec<DbKind> = members.iter().map(|m| m.kind).collect();
    // An instance and a cluster of one identifier: each its own manifest file.
    let shared = shared_ids(members.iter().map(|m| (m.kind, m.id.as_str())));
    // The copies are made in the target region, if it is another: its limits count.
    let mut there = match &args.target_region {
        Some(region) => {
            crate::flows::export::refuse_unreachable(aws, region)?;
            aws.at(region).await?
        }
        None => aws.clone(),
    };
    let crossing = there.region != aws.region;
    let listed_elsewhere = if crossing {
        Some(rds::list_all(&there).await?)
    } else {
        None
    };
    let listed_there = listed_elsewhere.as_deref().unwrap_or(&listed);
    there.copies = crate::aws::quota::fleet_slots(
        listed_there,
        &there.region,
        args.max_parallel.map(usize::from),
        &kinds,
    )?;
    let aws = &if crossing {
        aws.clone().reaching(there)
    } else {
        there
    };
    let copying = aws.destination().unwrap_or(aws);
    let batched = batched(&args.engine, args.dry_run);
    let needs = members
        .into_iter()
        .map(|m| {
            let names = names_of(&m, args, &aws.region, &copying.region);
            let need = room_need(need(&m, &names, listed_there, &listed), batched);
            (m, need)
        })
        .collect();
    let (members, rooms, mut outcomes) = admit(aws, needs, printer).await;
    say_limits(copying, members.len(), printer);
    let batches = Batches::new(aws, batched, Workflow::Export, &members);
    let run = |member: Member| async {
        let room = rooms.get(&member.id).cloned().flatten();
        one(member, printer, async |m: &Member, line: &DatabaseLine| {
            batches
                .run(aws, &args.engine, m, line, async |engine| {
                    let manifest = dir.join(manifest_file(m.kind, &m.id, &shared));
                    export_one(aws, args, engine, manifest, m, room, line).await
                })
                .await
        })
        .await
    };
    outcomes.extend(
        run_all(
            &aws.budget,
            members,
            workers(&copying.copies, batched),
            printer,
            run,
        )
        .await,
    );
    outcomes.sort_by(|a, b| a.database.cmp(&b.database));
    let index = (!args.dry_run)
        .then(|| write_index(aws, args, &caller.account, &index_path, &outcomes, &shared))
        .transpose()?
        .flatten();
    Ok(summary(
        aws,
        args,
        &caller.account,
        outcomes,
        &index_path,
        index,
    ))
}

async fn export_one(
    aws: &Aws,
    args: &ExportArgs,
    engine: EngineArgs,
    manifest: PathBuf,
    member: &Member,
    room: Option<Room>,
    line: &DatabaseLine,
) -> Result<Done> {
    let mut plan = args.plan_for(member.kind, &member.id, manifest)?;
    plan.folder_checked = true;
    plan.in_fleet = true;
    plan.engine = engine;
    let _room = take_room(room).await;
    let report = export(aws, &plan, line).await?;
    let result = match (plan.dry_run, report.already_done) {
        (_, true) => "already exported",
        (true, false) => "would export",
        (false, false) => "exported",
    };
    Ok(Done {
        result,
        file: Some(report.manifest_path.display().to_string()),
        sha256: (!report.fingerprint.is_empty()).then_some(report.fingerprint),
    })
}

/// Writes the index of every manifest this run has; returns its SHA-256 (`None`: no manifest).
fn write_index(
    aws: &Aws,
    args: &ExportArgs,
    source: &crate::ident::AccountId,
    path: &Path,
    outcomes: &[Outcome],
    shared: &BTreeSet<String>,
) -> Result<Option<String>> {
    let manifests: Vec<Entry> = outcomes
        .iter()
        .filter_map(|o| {
            Some(Entry {
                database: o.database.clone(),
                kind: o.kind,
                file: manifest_file(o.kind, &o.database, shared),
                sha256: o.sha256.clone()?,
            })
        })
        .collect();
    if manifests.is_empty() {
        return Ok(None);
    }
    let index = Index {
        schema: INDEX_SCHEMA,
        created_at: now(),
        source_account: source.clone(),
        region: aws.destination().unwrap_or(aws).region.clone(),
        target_account: args.target_account.clone(),
        manifests,
    };
    index.write(path).map(Some)
}

fn summary(
    aws: &Aws,
    args: &ExportArgs,
    source: &crate::ident::AccountId,
    outcomes: Vec<Outcome>,
    index_path: &Path,
    index: Option<String>,
) -> Summary {
    let path = index_path.display().to_string();
    let copying = aws.destination().unwrap_or(aws);
    let peak = |kind| copying.copies.peak(kind);
    let mut after = vec![];
    if args.dry_run {
        after.push("dry run: nothing was changed".to_owned());
    }
    let next = index.as_ref().map(|fingerprint| {
        format!(
            "tgt-agent import {path} --source-account {source} --manifest-sha256 {fingerprint} --region {} --db-subnet-group-name <SUBNET_GROUP> --vpc-security-group-ids <SG_ID>{}",
            copying.region,
            if args.verify_data { " --verify-data" } else { "" }
        )
    });
    if let (Some(fingerprint), Some(next)) = (&index, &next) {
        after.push(format!("\nindex: {path}\nindex SHA-256: {fingerprint}\n\nsend the folder to the target admin, and the index's SHA-256 on another channel (a call, a signed message): the target refuses an index or manifest that does not match it\n\nnext, in the target account:\n  {next}"));
    }
    let requests = aws.request_reports();
    let json = serde_json::json!({
        "event": "done",
        "dry_run": args.dry_run,
        "databases": &outcomes,
        "failed": outcomes.iter().filter(|o| o.failed()).count(),
        "index": index.as_ref().map(|_| path),
        "index_sha256": index,
        "next_command": next,
        "peak_copies": {"db_snapshot": peak(DbKind::Instance), "db_cluster_snapshot": peak(DbKind::Cluster)},
        "requests": &requests,
        "poll_rounds": poll_rounds(aws),
    });
    Summary {
        outcomes,
        after,
        json,
        dry_run: args.dry_run,
        requests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(
        kind: &'static str,
        id: &str,
        gib: i32,
        cluster: Option<&str>,
        tags: &[(&str, &str)],
    ) -> Listed {
        Listed {
            kind,
            id: id.into(),
            status: "available".into(),
            kms_key_id: None,
            snapshot_type: None,
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            allocated_gib: gib,
            cluster: cluster.map(str::to_owned),
            copy_of: None,
            encryption: crate::base::vocabulary::Encryption::KmsKey,
        }
    }

    fn selection(args: &[&str]) -> Selection {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            selection: Selection,
        }
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .selection
    }

    fn account() -> Vec<Listed> {
        vec![
            listed("db-instance", "big", 500, None, &[("team", "a")]),
            listed("db-instance", "small", 20, None, &[("team", "b")]),
            listed(
                "db-instance",
                "aurora-1",
                1,
                Some("aurora"),
                &[("team", "a")],
            ),
            listed("db-instance", "aurora-2", 1, Some("aurora"), &[]),
            listed("db-cluster", "aurora", 1, None, &[]),
            listed(
                "db-cluster",
                "rh-aurora-tmp",
                1,
                None,
                &[(TAG_ROLE, "temporary-cluster")],
            ),
        ]
    }

    fn ids(members: &[Member]) -> Vec<String> {
        members
            .iter()
            .map(|m| format!("{:?}:{}", m.kind, m.id))
            .collect()
    }

    #[test]
    fn all_takes_every_database_once_members_as_their_cluster_never_the_toolkits_own() {
        let members = select(&selection(&["--all"]), &account());
        assert_eq!(
            ids(&members),
            ["Cluster:aurora", "Instance:big", "Instance:small"]
        );
        assert_eq!(members[1].gib, 500);
    }

    #[test]
    fn tags_select_what_carries_all_of_them_and_named_ones_add() {
        let members = select(&selection(&["--tag", "team=a"]), &account());
        assert_eq!(ids(&members), ["Cluster:aurora", "Instance:big"]);
        let members = select(
            &selection(&[
                "--tag",
                "team=b",
                "--db-instance",
                "big",
                "--db-instance",
                "small",
            ]),
            &account(),
        );
        assert_eq!(ids(&members), ["Instance:big", "Instance:small"]);
        assert!(select(&selection(&["--tag", "team=c"]), &account()).is_empty());
    }

    #[test]
    fn a_fleet_needs_room_only_for_what_does_not_exist_yet() {
        let names = ExportNames::new(DbKind::Instance.snapshot_kind(), "big", "222222222222");
        let member = &select(&selection(&["--db-instance", "big"]), &account())[0];
        let mut listing = account();
        assert_eq!(
            need(member, &names, &listing, &listing),
            Need {
                kept: 1,
                temporary: true
            }
        );
        listing.push(listed("db-snapshot", &names.intermediate, 500, None, &[]));
        assert_eq!(
            need(member, &names, &listing, &listing),
            Need {
                kept: 1,
                temporary: false
            }
        );
        listing.push(listed("db-snapshot", &names.shared, 500, None, &[]));
        assert_eq!(
            need(member, &names, &listing, &listing),
            Need {
                kept: 0,
                temporary: false
            }
        );
    }
}
