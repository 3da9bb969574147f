//! The region's manual snapshot quota (`DescribeAccountAttributes`, read once per run), and
//! the check that a run has room in it for the snapshots it will make.

use crate::aws::Aws;
use crate::base::error::{sdk, Error, Result};
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::DbKind;

/// Manual snapshots in use and allowed in this region, from `DescribeAccountAttributes`
/// (asked once per run: every database of a fleet reads the same answer).
pub async fn snapshot_quota(aws: &Aws, kind: DbKind) -> Result<Option<(i64, i64)>> {
    let name = match kind {
        DbKind::Instance => "ManualSnapshots",
        DbKind::Cluster => "ManualClusterSnapshots",
    };
    let quotas = aws.quotas.get_or_try_init(|| account_quotas(aws)).await?;
    Ok(quotas
        .iter()
        .find(|(quota, ..)| quota == name)
        .map(|(_, used, max)| (*used, *max)))
}

async fn account_quotas(aws: &Aws) -> Result<Vec<(String, i64, i64)>> {
    let out = aws
        .rds
        .describe_account_attributes()
        .send()
        .await
        .map_err(sdk("rds:DescribeAccountAttributes"))?;
    Ok(out
        .account_quotas()
        .iter()
        .map(|q| {
            let name = q.account_quota_name().unwrap_or_default().to_owned();
            (name, q.used().unwrap_or(0), q.max().unwrap_or(i64::MAX))
        })
        .collect())
}

/// Refuses when the region's manual snapshot quota has no room for `needed` more. The quota
/// is advisory: when it cannot be read (a caller without `rds:DescribeAccountAttributes`),
/// the run warns and goes on, and AWS itself refuses a snapshot over the quota.
pub async fn check_snapshot_room(
    aws: &Aws,
    kind: DbKind,
    needed: i64,
    progress: &dyn Progress,
) -> Result<()> {
    let quota = match snapshot_quota(aws, kind).await {
        Ok(quota) => quota,
        Err(err) => {
            let status = format!("not checked ({err})");
            progress.event(&Event::warning(
                "snapshot quota",
                "rds:DescribeAccountAttributes",
                &status,
            ));
            return Ok(());
        }
    };
    match quota {
        Some((used, max)) if used + needed > max => Err(Error::refused(
            format!(
                "the region has {used} of {max} manual snapshots; this run needs {needed} more"
            ),
            "delete manual snapshots you no longer need, or ask AWS for a higher quota",
        )),
        _ => Ok(()),
    }
}
