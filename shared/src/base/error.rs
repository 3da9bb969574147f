//! The library's error type, its operator hints and the process exit codes.
//!
//! Every failure the agents can report is one [`Error`]: a short lowercase message that names
//! what failed, plus an optional hint that says what to do next. The binaries print the
//! message, a blank line and `hint: …`, then exit with [`Error::exit_code`].

use std::fmt;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::base::vocabulary::DbKind;
use crate::ident::IdentError;

/// Stable process exit codes (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    /// A finding of high severity (`audit`) or an unspecified failure.
    Failure = 1,
    /// The command line or a local input is wrong; no AWS call was made.
    Usage = 2,
    /// A check against AWS refused to go on (manifest mismatch, lockout risk, not shareable).
    Refused = 3,
    /// AWS answered with an error, or could not be reached.
    Aws = 4,
    /// A wait ran past `--wait-timeout`, or a resource reached a terminal failure status.
    Timeout = 5,
    /// A fleet run finished some databases and not others; re-run the same command.
    Partial = 6,
    /// The data check found a difference: a table's rows or contents are not what the
    /// source's digest says (`--verify-data`, `verify`).
    DataDiffers = 7,
    /// Interrupted by a signal; re-run the same command to resume.
    Interrupted = 130,
}

/// Everything that can go wrong, each with the operator's next step where there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ident(#[from] IdentError),
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    #[error("{message}")]
    Config { message: String, hint: String },
    #[error("{message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },
    #[error("{action}: {code}: {message}")]
    Aws {
        action: String,
        code: String,
        message: String,
        hint: Option<String>,
    },
    #[error("{resource} is `{status}`, a status it will not leave by itself")]
    TerminalStatus { resource: String, status: String },
    #[error(
        "gave up waiting for {resource} to become `{goal}` after {waited}; last status `{status}`"
    )]
    WaitTimeout {
        resource: String,
        goal: String,
        status: String,
        waited: String,
    },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("interrupted")]
    Interrupted,
    #[error("Step Functions execution {execution} ended {status}: {error}: {cause}")]
    Execution {
        execution: String,
        status: String,
        error: String,
        cause: String,
    },
    /// Not a failure: `--detach` started (or found) the execution and returned.
    #[error("{database}: the Step Functions execution goes on without this process: {execution}")]
    Detached { execution: String, database: String },
    /// `--stop-source` found the source not `available` and no snapshot of it under the run's
    /// name: AWS snapshots a database only while it is `available`.
    #[error("{} `{db}` is `{status}` and has no snapshot `{snapshot}`: AWS snapshots a database only while it is `available`", .kind.name())]
    StoppedWithoutSnapshot {
        kind: DbKind,
        db: String,
        status: String,
        snapshot: String,
    },
    /// `--stop-source` found the run's snapshot of an instance that is `available` again: the
    /// snapshot misses what was written since.
    #[error("snapshot `{snapshot}` exists but DB instance `{db}` is `available` again: what was written to it since the snapshot is not in it")]
    StartedSinceSnapshot { db: String, snapshot: String },
    /// The data check could not reach, log in to or read the database.
    #[error("data check: {0}")]
    Database(#[from] crate::datacheck::Error),
    /// The data check found tables that differ from the digest expected.
    #[error("{what}: {} table(s) differ: {}", .differences.len(), .differences.join("; "))]
    DataDiffers {
        what: String,
        differences: Vec<String>,
        hint: String,
    },
    /// A snapshot under a name the run makes holds another database than the run's.
    #[error("snapshot `{snapshot}` exists but is of `{of}`, not of `{db}`")]
    SnapshotOfAnother {
        snapshot: String,
        of: String,
        db: String,
    },
}

impl From<crate::policy::LockoutError> for Error {
    fn from(err: crate::policy::LockoutError) -> Self {
        Self::refused(err.to_string(), err.hint())
    }
}

impl Error {
    /// AWS reports a `StorageEncryptionType` this release does not know, for `what`.
    pub fn unknown_encryption(what: &str) -> Self {
        Self::refused(
            format!("AWS reports a storage encryption type this release does not know for {what}"),
            "upgrade rds-handoff: it must know how a database is encrypted before it copies, shares or restores it",
        )
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage {
            message: message.into(),
            hint: None,
        }
    }

    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Refused {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn io(path: impl fmt::Display, err: std::io::Error) -> Self {
        Self::Io {
            path: path.to_string(),
            message: err.to_string(),
        }
    }

    /// What the operator should do next, printed after the message.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Usage { hint, .. } | Self::Refused { hint, .. } | Self::Aws { hint, .. } => {
                hint.clone()
            }
            Self::Config { hint, .. } => Some(hint.clone()),
            Self::TerminalStatus { .. } => Some(
                "look at the resource's events in the RDS console (or `aws rds describe-events`); \
                 fix the cause, remove the failed resource, then re-run the same command"
                    .into(),
            ),
            Self::WaitTimeout { .. } => Some(
                "nothing was undone: re-run the same command (optionally with a longer \
                 `--wait-timeout`) and it resumes the wait"
                    .into(),
            ),
            Self::Interrupted => {
                Some("re-run the same command: it resumes where it stopped".into())
            }
            Self::Execution { error, .. } if error == crate::base::vocabulary::STILL_WAITING => {
                Some(
                    "nothing failed: AWS is still working on it. Re-run the `export`, `import` or `encrypt` command (not `status`), with a longer `--wait-timeout` if you like: a new attempt finds what is made and goes on waiting"
                        .into(),
                )
            }
            Self::Execution { .. } => Some(
                "its history in the Step Functions console shows each step; fix the cause, then \
                 re-run the same command: a new attempt starts and every step finds what the last one made"
                    .into(),
            ),
            Self::Detached { execution, .. } => Some(format!(
                "follow it with `status --execution {execution}`; when it has succeeded, run the same command again to finish (it attaches, writes what the local engine writes, and repeats nothing)"
            )),
            Self::StoppedWithoutSnapshot { kind, db, .. } => {
                let noun = match kind {
                    DbKind::Instance => "instance",
                    DbKind::Cluster => "cluster",
                };
                Some(format!(
                    "wait until it is `available` (if it is stopped: `aws rds start-db-{noun} --db-{noun}-identifier {db}`), then re-run the same command: `--stop-source` takes the snapshot before the stop"
                ))
            }
            Self::StartedSinceSnapshot { snapshot, .. } => Some(format!(
                "it was started after the snapshot (by hand, or by AWS, which starts a stopped database again after 7 days): delete the snapshot (`aws rds delete-db-snapshot --db-snapshot-identifier {snapshot}`) and re-run the same command, which takes a new one as it stops it"
            )),
            Self::SnapshotOfAnother { snapshot, .. } => Some(format!(
                "find out who made `{snapshot}`; if it is stale, delete it and re-run (the toolkit reuses only a snapshot of the database it copies)"
            )),
            Self::Database(err) => Some(err.hint()),
            Self::DataDiffers { hint, .. } => Some(hint.clone()),
            Self::Ident(_) | Self::Io { .. } => None,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Ident(_) | Self::Usage { .. } | Self::Config { .. } | Self::Io { .. } => {
                ExitCode::Usage
            }
            Self::Refused { .. }
            | Self::StoppedWithoutSnapshot { .. }
            | Self::StartedSinceSnapshot { .. }
            | Self::SnapshotOfAnother { .. } => ExitCode::Refused,
            Self::Database(err) if err.is_timeout() => ExitCode::Timeout,
            Self::Database(_) => ExitCode::Refused,
            Self::DataDiffers { .. } => ExitCode::DataDiffers,
            Self::Aws { .. } => ExitCode::Aws,
            Self::TerminalStatus { .. } | Self::WaitTimeout { .. } => ExitCode::Timeout,
            Self::Interrupted => ExitCode::Interrupted,
            Self::Execution { error, .. }
                if error == crate::base::vocabulary::TERMINAL_ERROR
                    || error == crate::base::vocabulary::STILL_WAITING =>
            {
                ExitCode::Timeout
            }
            Self::Execution { .. } => ExitCode::Aws,
            Self::Detached { .. } => ExitCode::Ok,
        }
    }

    /// The AWS error code, when this is an AWS error.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Self::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The SDK's error for one call.
pub type SdkError<E> =
    aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>;

/// Turns an SDK error into [`Error::Aws`], naming the action and adding a hint for the
/// failures an operator can fix (permissions, credentials, endpoint). A request that never
/// got an answer is `Unreachable`; an answer without an AWS error code (an HTTP 500, an
/// operation the endpoint does not implement) is the server's `ServerError`, with its status.
pub fn sdk<E>(action: impl Into<String>) -> impl FnOnce(SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError as Sdk;
    let action = action.into();
    move |err| {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let (code, message) = match (&err, err.code(), status) {
            (Sdk::DispatchFailure(_) | Sdk::TimeoutError(_), _, _) => {
                ("Unreachable".to_owned(), chain(&err))
            }
            (_, Some(code), _) => (
                code.to_owned(),
                err.message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| chain(&err)),
            ),
            (_, None, Some(status)) => (
                "ServerError".to_owned(),
                format!("the endpoint answered HTTP {status} without an AWS error code"),
            ),
            (_, None, None) => ("RequestFailed".to_owned(), chain(&err)),
        };
        let hint = hint_for(&code, &action);
        Error::Aws {
            action,
            code,
            message,
            hint,
        }
    }
}

/// The error and its sources on one line, for transport failures that carry no AWS code.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn hint_for(code: &str, action: &str) -> Option<String> {
    let hint = match code {
        "AccessDenied" | "AccessDeniedException" | "AccessDeniedFault" | "UnauthorizedOperation" => {
            format!("the caller lacks permission for {action}: attach the operator policy from `policies/` to the identity running this command")
        }
        "ExpiredToken" | "ExpiredTokenException" | "InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch" => {
            "the credentials were refused: refresh them (`aws sso login`, or new keys) and check `--profile`".into()
        }
        "Unreachable" => {
            "AWS could not be reached: check the network, `--region` and `--endpoint-url` / `AWS_ENDPOINT_URL`".into()
        }
        "ServerError" => {
            format!("the server answered but did not perform {action}: if `--endpoint-url` points at an emulator, it may not implement it; on AWS, re-run the same command (it resumes)")
        }
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            "AWS kept throttling after all retries: wait a minute and re-run the same command; it resumes".into()
        }
        "KMSKeyNotAccessibleFault" | "KMSKeyNotAccessible" => {
            "RDS could not use the KMS key: check the key is enabled and its policy lets this account use it through RDS (`src-agent policy` prints the required statements)".into()
        }
        _ => return None,
    };
    Some(hint)
}
