//! The key the shared copy is encrypted under: its policy (granting the target account, or
//! one principal of it), and the key found by alias or tag or made, through
//! [`crate::aws::kms::ensure_key`].

use std::collections::BTreeMap;

use crate::aws::kms::{self, ensure_key, Key, KeyChoice};
use crate::aws::rds;
use crate::aws::{Aws, Caller};
use crate::base::error::Result;
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::DbKind;
use crate::policy::builder::{has_peer, merge_peer};
use crate::policy::{check_lockout, KeyPolicySpec, Peer, PolicyDocument};
use crate::workflow::Engine;

use super::ExportPlan;

/// The export's key: the one named, or the toolkit's own found or made, with the policy
/// that lets the target account use it.
pub(super) async fn ensure_export_key(
    aws: &Aws,
    plan: &ExportPlan,
    caller: &Caller,
    tags: &BTreeMap<String, String>,
    progress: &dyn Progress,
) -> Result<Key> {
    ensure_key(
        aws,
        &plan.key,
        &key_spec(plan, aws, caller),
        caller,
        tags,
        progress,
    )
    .await
}

/// Refuses, before any KMS request, a policy for the toolkit's own key that would lock the
/// caller out (a `--key-admin` list without them). A named key keeps its own admins.
pub(super) fn refuse_lockout(plan: &ExportPlan, aws: &Aws, caller: &Caller) -> Result<()> {
    if matches!(plan.key, KeyChoice::Given(_)) {
        return Ok(());
    }
    check_lockout(&key_spec(plan, aws, caller).build(), &caller.principal())?;
    Ok(())
}

pub(super) fn key_spec(plan: &ExportPlan, aws: &Aws, caller: &Caller) -> KeyPolicySpec {
    let peer = Peer {
        account: plan.target.clone(),
        principal: plan.target_principal.clone(),
    };
    let mut spec = KeyPolicySpec::source(
        &aws.partition,
        aws.region.clone(),
        caller.account.clone(),
        peer,
    );
    spec.admins = plan.key_admins.clone();
    spec.org_id = plan.org_id.clone();
    spec.variant = plan.key_policy;
    spec
}

/// What a failed run takes back from a key the operator named: the policy as it was before
/// the run added the target's statements. The toolkit's own key keeps them (it is made for
/// this handoff); a resumed run adds them again. Only a run that is the key's one user
/// takes them back: not a fleet's database (its siblings share under the same key), not a
/// Step Functions run (its execution may go on and share), and not once a snapshot under the
/// key is shared with the target (its copy needs them).
pub(super) struct Undo {
    /// The named key's policy before the run, and the policy the run would make of it.
    before: Option<(PolicyDocument, PolicyDocument)>,
}

impl Undo {
    pub(super) async fn before(aws: &Aws, plan: &ExportPlan, caller: &Caller) -> Result<Undo> {
        let alone = !plan.in_fleet && plan.engine.engine == Engine::Local;
        let KeyChoice::Given(id) = &plan.key else {
            return Ok(Undo { before: None });
        };
        if !alone {
            return Ok(Undo { before: None });
        }
        let Some(key) = kms::describe(aws, id).await? else {
            return Ok(Undo { before: None });
        };
        let spec = key_spec(plan, aws, caller);
        let policy = kms::get_policy(aws, &key.id).await?;
        // Exactly what `ensure_key` will do: merge the statements, unless they are there.
        let before = spec.peer.as_ref().and_then(|peer| {
            let wanted = spec.peer_statements(peer);
            if has_peer(&policy, &wanted) {
                return None;
            }
            let merged = merge_peer(policy.clone(), wanted);
            Some((policy, merged))
        });
        Ok(Undo { before })
    }

    /// Puts the policy back if it is still the one the run made; says what to remove if
    /// someone changed it since. Never fails the run twice: its own error is what counts.
    pub(super) async fn revert(
        &self,
        aws: &Aws,
        plan: &ExportPlan,
        key: &Key,
        caller: &Caller,
        progress: &dyn Progress,
    ) {
        let Some((before, made)) = &self.before else {
            return;
        };
        match shared_under(aws, key, plan.target.as_str()).await {
            Ok(None) => {}
            Ok(Some(id)) => {
                let why = format!("`{id}` under it is shared with the target");
                return say_left(key, plan.target.as_str(), &why, progress);
            }
            Err(err) => return say_left(key, plan.target.as_str(), &err.to_string(), progress),
        }
        let now = match kms::get_policy(aws, &key.id).await {
            Ok(now) => now,
            Err(err) => return say_left(key, plan.target.as_str(), &err.to_string(), progress),
        };
        if now != *made {
            return say_left(
                key,
                plan.target.as_str(),
                "its policy changed since this run added them",
                progress,
            );
        }
        match kms::put_policy(aws, key, before, caller).await {
            Ok(()) => progress.event(&Event::step(
                "key policy",
                &key.arn,
                "target statements this run added taken back",
            )),
            Err(err) => say_left(key, plan.target.as_str(), &err.to_string(), progress),
        }
    }
}

/// A manual snapshot encrypted with `key` and shared with `account`, if there is one.
async fn shared_under(aws: &Aws, key: &Key, account: &str) -> Result<Option<String>> {
    for listed in rds::list_all(aws).await? {
        let under = listed
            .kms_key_id
            .as_deref()
            .is_some_and(|k| k == key.arn || k == key.id);
        let kind = match listed.kind {
            "db-snapshot" => DbKind::Instance,
            "db-cluster-snapshot" => DbKind::Cluster,
            _ => continue,
        };
        let shared = under
            && rds::shared_with(aws, kind, &listed.id)
                .await?
                .iter()
                .any(|a| a == account);
        if shared {
            return Ok(Some(listed.id));
        }
    }
    Ok(None)
}

fn say_left(key: &Key, target: &str, why: &str, progress: &dyn Progress) {
    progress.event(&Event::warning(
        "key policy",
        &key.arn,
        &format!("the target statements this run added stay ({why}): re-run the same command to finish the export; if you abandon it, remove the statements naming account {target} from the key policy (`aws kms put-key-policy`)"),
    ));
}
