//! Runs the agents as separate processes, the way an admin runs them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::accounts::Account;
use crate::emulator::target_dir;
use crate::proxy::Proxy;

#[derive(Debug, Clone, Copy)]
pub enum Agent {
    Src,
    Tgt,
}

impl Agent {
    pub fn name(self) -> &'static str {
        match self {
            Agent::Src => "src-agent",
            Agent::Tgt => "tgt-agent",
        }
    }

    /// The binary cargo built beside this test executable (`target/<profile>/`).
    pub fn path(self) -> PathBuf {
        let exe = std::env::current_exe().unwrap_or_default();
        let found = exe
            .ancestors()
            .skip(1)
            .take(2)
            .map(|dir| dir.join(self.name()))
            .find(|p| p.exists());
        found.unwrap_or_else(|| {
            panic!(
                "{} is not built next to {}: run the tests with `cargo test --workspace`, which builds both agents",
                self.name(),
                exe.display()
            )
        })
    }
}

/// Builds both agents, `release` or debug (`cargo run` has released cargo's lock by the
/// time a binary of this crate runs).
pub fn build_agents(release: bool) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec![
        "build",
        "--quiet",
        "-p",
        "source-agent",
        "-p",
        "target-agent",
    ];
    if release {
        args.push("--release");
    }
    let status = std::process::Command::new(cargo)
        .args(args)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the agents failed");
}

/// The SHA-256 of `file` in `dir` as it is now: the fingerprint `src-agent export` printed,
/// which the target admin receives apart from the file and passes as `--manifest-sha256`.
/// A file that is not there gets the SHA-256 of nothing (well formed, matching no manifest).
pub fn sha_of(dir: &Path, file: &str) -> String {
    let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
    rds_handoff::base::manifest::fingerprint(&bytes)
}

/// `tgt-agent import` of `manifests` (or an index) into `net`, trusting `source`, with one
/// `--manifest-sha256` per entry of `shas`.
pub fn import_args(
    manifests: &[&str],
    source: &str,
    shas: &[&str],
    net: &crate::fixtures::Network,
) -> Vec<String> {
    let mut args = vec!["import".to_owned()];
    args.extend(manifests.iter().map(|m| (*m).to_owned()));
    args.extend(["--source-account".to_owned(), source.to_owned()]);
    for sha in shas {
        args.extend(["--manifest-sha256".to_owned(), (*sha).to_owned()]);
    }
    args.extend([
        "--db-subnet-group-name".to_owned(),
        net.subnet_group.clone(),
        "--vpc-security-group-ids".to_owned(),
        net.security_group.clone(),
    ]);
    args
}

/// What one agent run did.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the run succeeded.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "agent failed:\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the run exited with `code` and said `text` on stderr.
    pub fn refused(self, code: i32, text: &str) -> Run {
        assert_eq!(
            self.code, code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(text),
            "expected {text:?} in stderr:\n{}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }

    /// The `error:` lines: one clear message.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("error"))
            .collect()
    }
}

/// A fresh working directory for one test: manifests and reports land here.
pub struct Workdir {
    pub path: PathBuf,
}

impl Workdir {
    pub fn new(name: &str) -> Workdir {
        let path = target_dir()
            .join("e2e-work")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test's work directory");
        Workdir { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Runs `agent args…` as `account`, in this directory, with a clean environment.
    pub async fn run(&self, agent: Agent, account: &Account, args: &[impl AsRef<OsStr>]) -> Run {
        self.run_with(agent, account, args, &[]).await
    }

    pub async fn run_with(
        &self,
        agent: Agent,
        account: &Account,
        args: &[impl AsRef<OsStr>],
        extra_env: &[(&str, &str)],
    ) -> Run {
        let out = self
            .command(agent, account, args)
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("running {}: {e}", agent.name()));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `agent args…` as an admin of `account` runs it here, isolated from the host's AWS
    /// setup; the caller adds what else it needs and starts it.
    pub fn command(
        &self,
        agent: Agent,
        account: &Account,
        args: &[impl AsRef<OsStr>],
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(agent.path());
        command
            .args(args)
            .current_dir(&self.path)
            .env_clear()
            .env("HOME", &self.path)
            .envs(account.env());
        command
    }

    /// Runs `agent args…` with its AWS traffic through `proxy`.
    pub async fn via(
        &self,
        proxy: &Proxy,
        agent: Agent,
        account: &Account,
        args: &[impl AsRef<OsStr>],
    ) -> Run {
        self.run_with(agent, account, args, &[("AWS_ENDPOINT_URL", &proxy.url)])
            .await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
