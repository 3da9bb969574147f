//! The key the shared copy is encrypted under: its policy (granting the target account, or
//! one principal of it), and the key found by alias or tag or made, through
//! [`crate::aws::kms::ensure_key`].

use std::collections::BTreeMap;

use crate::aws::kms::{ensure_key, Key, KeyChoice};
use crate::aws::{Aws, Caller};
use crate::base::error::Result;
use crate::base::progress::Progress;
use crate::policy::{check_lockout, KeyPolicySpec, Peer};

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

fn key_spec(plan: &ExportPlan, aws: &Aws, caller: &Caller) -> KeyPolicySpec {
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
