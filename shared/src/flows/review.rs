//! The reviewer's commands: `src-agent policy` prints the key policy the toolkit would write;
//! `src-agent audit` judges a live key policy.

use crate::aws::kms;
use crate::aws::{Aws, AwsArgs};
use crate::base::error::{Error, ExitCode, Result};
use crate::base::progress::Printer;
use crate::ident::{AccountId, Arn, Region};
use crate::policy::audit::{audit_trusting, Finding, Severity, Trust};
use crate::policy::explain::explain;
use crate::policy::{KeyPolicySpec, KeyPolicyVariant, Peer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyFormat {
    /// The policy document, exactly as it is sent to KMS
    Json,
    /// Each statement in words: who, what, when, why
    Explain,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// The account that will import the database
    #[arg(long, value_name = "ACCOUNT")]
    pub target_account: AccountId,
    /// The key's account; given, no AWS call is made [default: the caller's account]
    #[arg(long, value_name = "ACCOUNT")]
    pub source_account: Option<AccountId>,
    /// Administer the key through this principal instead of the account root (repeatable)
    #[arg(long = "key-admin", value_name = "ARN")]
    pub key_admins: Vec<Arn>,
    /// Narrow the target's statements to this principal of the target account
    #[arg(long, value_name = "ARN")]
    pub target_principal: Option<Arn>,
    /// Also require the target principal to be in this AWS Organization
    #[arg(long, value_name = "ORG_ID")]
    pub org_id: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    pub format: PolicyFormat,
    /// Which statements the target gets: AWS's documented set, or `strict` (NOT VERIFIED ON AWS)
    #[arg(long, value_enum, default_value = "documented")]
    pub key_policy: KeyPolicyVariant,
}

/// The key policy text for `policy`.
pub async fn policy_text(args: &PolicyArgs, aws_args: &AwsArgs) -> Result<String> {
    let (account, region, partition) = match &args.source_account {
        Some(account) => {
            let region = offline_region(aws_args)?;
            let partition = crate::aws::partition_of(&region).to_owned();
            (account.clone(), region, partition)
        }
        None => {
            let aws = Aws::connect(aws_args).await?;
            (
                aws.caller().await?.account,
                aws.region.clone(),
                aws.partition.clone(),
            )
        }
    };
    let peer = Peer {
        account: args.target_account.clone(),
        principal: args.target_principal.clone(),
    };
    let mut spec = KeyPolicySpec::source(&partition, region, account, peer);
    spec.admins = args.key_admins.clone();
    spec.org_id = args.org_id.clone();
    spec.variant = args.key_policy;
    Ok(match args.format {
        PolicyFormat::Json => spec.build().to_json(),
        PolicyFormat::Explain => explain(&spec),
    })
}

/// `--region`, then `AWS_REGION` / `AWS_DEFAULT_REGION`, without reading any AWS config.
fn offline_region(aws_args: &AwsArgs) -> Result<Region> {
    if let Some(region) = &aws_args.region {
        return Ok(region.clone());
    }
    let from_env = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION"));
    match from_env {
        Ok(region) => Ok(region.parse()?),
        Err(_) => Err(Error::Usage {
            message: "no region: the key policy names the region RDS uses the key in".into(),
            hint: Some("pass `--region us-east-1` (or your region)".into()),
        }),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// The key to audit: key id, key ARN or alias
    #[arg(long = "kms-key-id", alias = "key", value_name = "KEY")]
    pub key: String,
    /// An account the key may be shared with (the handoff's target; repeatable). Any other
    /// account the policy lets in is a finding
    #[arg(long, value_name = "ACCOUNT")]
    pub target_account: Vec<AccountId>,
}

/// Audits a live key policy; exits 1 when a finding is of high severity.
pub async fn run_audit(
    args: &AuditArgs,
    aws_args: &AwsArgs,
    printer: &Printer,
) -> Result<ExitCode> {
    let aws = Aws::connect(aws_args).await?;
    let caller = aws.caller().await?;
    let key = kms::describe(&aws, &args.key).await?.ok_or_else(|| {
        Error::refused(
            format!("KMS key `{}` not found", args.key),
            "check `--kms-key-id`, `--region` and `--profile`",
        )
    })?;
    let key_arn: Arn = key.arn.parse()?;
    let account = key_arn
        .account
        .clone()
        .unwrap_or_else(|| caller.account.clone());
    let policy = kms::get_policy(&aws, &key.id).await?;
    let trust = args
        .target_account
        .iter()
        .fold(Trust::key_only(account), |trust, target| {
            trust.with_target(target.clone())
        });
    let findings = audit_trusting(&policy, &trust, Some(&caller.principal()));
    printer.result(
        &audit_text(&key.arn, &findings),
        &serde_json::json!({"key": key.arn, "findings": findings}),
    );
    let high = findings.iter().any(|f| f.severity == Severity::High);
    Ok(if high {
        ExitCode::Failure
    } else {
        ExitCode::Ok
    })
}

fn audit_text(key: &str, findings: &[Finding]) -> String {
    if findings.is_empty() {
        return format!("{key}: no findings");
    }
    let mut text = format!("{key}: {} finding(s)", findings.len());
    for f in findings {
        let severity = format!("{:?}", f.severity).to_uppercase();
        text.push_str(&format!("\n  [{severity}] {}: {}", f.check, f.message));
    }
    text
}
