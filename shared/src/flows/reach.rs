//! Whether the clients of the restored database can reach it: the security groups the import
//! puts it in (`--vpc-security-group-ids`) admit TCP on its port from each client the operator
//! names (`--client-cidr`, `--client-security-group`), judged from the groups' inbound rules
//! before anything is restored, so a missing rule is found by `check`, not by the application
//! after an hour's copy.
//!
//! The rules are judged as AWS documents security groups: they only allow, so a client is
//! admitted when ANY inbound rule of ANY of the groups admits it. A rule admits TCP on the
//! port when its protocol is `tcp` (6) or `-1` (all traffic) and its port range holds the
//! port; and admits the client when
//! - a CIDR client lies wholly inside the rule's CIDR of its family (`10.0.1.0/24` inside
//!   `10.0.0.0/16`; IPv6 clients against IPv6 CIDRs), or inside an entry of the rule's
//!   managed prefix list;
//! - a security-group client is the group the rule references (`sg-…`, or `ACCOUNT/sg-…` for a
//!   group of another account: then the account must match too), or the rule is open to every
//!   address (`0.0.0.0/0`, `::/0`).
//!
//! What the rules cannot tell is not claimed: a rule referencing a group admits no CIDR client,
//! and a CIDR rule narrower than everything admits no group client (its members' addresses are
//! unknown here). Network ACLs, routes and peering are outside this check.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Serialize;

use crate::aws::ec2::{self, IngressRule};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::manifest::Database;
use crate::base::progress::{Event, Progress};

/// What the operator typed: who must be able to reach the restored database.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReachArgs {
    /// A network that must reach the database on its port (IPv4 or IPv6 CIDR, e.g.
    /// 10.0.1.0/24), checked against the security groups' inbound rules before anything is
    /// restored; repeat the flag for several
    #[arg(long = "client-cidr", value_name = "CIDR")]
    pub client_cidrs: Vec<Cidr>,
    /// A security group whose members must reach the database (sg-…, or ACCOUNT/sg-… for a
    /// group of another account), checked the same way; repeat the flag for several
    #[arg(
        long = "client-security-group",
        value_name = "SG",
        value_parser = parse_client_group
    )]
    pub client_security_groups: Vec<String>,
}

impl ReachArgs {
    /// No client named: nothing to check.
    pub fn is_empty(&self) -> bool {
        self.client_cidrs.is_empty() && self.client_security_groups.is_empty()
    }

    /// The clients named, CIDRs first, each once.
    pub fn clients(&self) -> Result<Vec<Client>> {
        let mut clients: Vec<Client> = Vec::new();
        let cidrs = self.client_cidrs.iter().copied().map(Client::Cidr);
        let mut groups = Vec::new();
        for group in &self.client_security_groups {
            let group: GroupRef = group
                .parse()
                .map_err(|err: GroupRefError| Error::usage(err.to_string()))?;
            groups.push(Client::Group(group));
        }
        for client in cidrs.chain(groups) {
            if !clients.contains(&client) {
                clients.push(client);
            }
        }
        Ok(clients)
    }
}

/// `--client-security-group`'s parser: the value as given, once it reads as a group.
fn parse_client_group(text: &str) -> std::result::Result<String, GroupRefError> {
    text.parse::<GroupRef>().map(|group| group.to_string())
}

/// An IPv4 or IPv6 CIDR block, `10.0.1.0/24` or `2001:db8::/56`; a bare address is the block
/// of that one address (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    address: IpAddr,
    prefix: u8,
}

/// A CIDR block that does not read as one; the message states the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a CIDR block: {reason}")]
pub struct CidrError {
    text: String,
    reason: String,
}

impl Cidr {
    pub fn address(&self) -> IpAddr {
        self.address
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv6(&self) -> bool {
        self.address.is_ipv6()
    }

    /// Every address: `0.0.0.0/0` or `::/0`.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }

    /// Every address of `inner` is in this block (of the same family).
    pub fn contains(&self, inner: &Cidr) -> bool {
        if inner.prefix < self.prefix {
            return false;
        }
        match (self.address, inner.address) {
            (IpAddr::V4(outer), IpAddr::V4(inner)) => {
                masked_v4(outer, self.prefix) == masked_v4(inner, self.prefix)
            }
            (IpAddr::V6(outer), IpAddr::V6(inner)) => {
                masked_v6(outer, self.prefix) == masked_v6(inner, self.prefix)
            }
            _ => false,
        }
    }

    /// A CIDR as AWS gives it in a rule or a prefix list: host bits, if any, are ignored.
    fn lenient(text: &str) -> Option<Cidr> {
        let (address, prefix) = parse_parts(text).ok()?;
        Some(Cidr { address, prefix })
    }

    /// The block `address/prefix` names, host bits cleared.
    fn network(address: IpAddr, prefix: u8) -> IpAddr {
        match address {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(masked_v4(a, prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(masked_v6(a, prefix))),
        }
    }
}

fn masked_v4(address: Ipv4Addr, prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        // INVARIANT: 1 ≤ prefix ≤ 32 (parse_parts), so the shift is 0 to 31.
        _ => u32::from(address) & (u32::MAX << (32 - u32::from(prefix.min(32)))),
    }
}

fn masked_v6(address: Ipv6Addr, prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        // INVARIANT: 1 ≤ prefix ≤ 128 (parse_parts), so the shift is 0 to 127.
        _ => u128::from(address) & (u128::MAX << (128 - u32::from(prefix.min(128)))),
    }
}

/// The address and prefix length of `text`, checked for their ranges only.
fn parse_parts(text: &str) -> std::result::Result<(IpAddr, u8), CidrError> {
    let fail = |reason: &str| CidrError {
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    let shape =
        "expected an IPv4 or IPv6 address and a prefix length, as `10.0.1.0/24` or `2001:db8::/56`";
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().map_err(|_| fail(shape))?;
    let max: u8 = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(fail(shape));
            }
            match digits.parse::<u8>() {
                Ok(prefix) if prefix <= max => prefix,
                _ if max == 32 => {
                    return Err(fail("the prefix length of an IPv4 block is 0 to 32"))
                }
                _ => return Err(fail("the prefix length of an IPv6 block is 0 to 128")),
            }
        }
    };
    Ok((address, prefix))
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Strict, for what the operator types: a block whose host bits are set is refused with
    /// the block it is in (`10.0.1.5/24` names neither a host nor a network for sure).
    fn from_str(text: &str) -> std::result::Result<Self, CidrError> {
        let (address, prefix) = parse_parts(text.trim())?;
        let network = Cidr::network(address, prefix);
        if network != address {
            return Err(CidrError {
                text: text.to_owned(),
                reason: format!(
                    "host bits are set: the block is `{network}/{prefix}` (a single address is `{address}`)"
                ),
            });
        }
        Ok(Cidr { address, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// A security group named as a client: `sg-…` (any account; group ids are unique), or
/// `ACCOUNT/sg-…` as AWS names a group of another account in a rule (`UserId/GroupId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupRef {
    pub account: Option<String>,
    pub group_id: String,
}

/// A client security group that does not read as one; the message states the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a security group: expected `sg-` and 8 to 17 hexadecimal digits (`sg-0123456789abcdef0`), or `ACCOUNT/sg-…` for a group of another account (`111122223333/sg-0123456789abcdef0`)")]
pub struct GroupRefError(String);

impl FromStr for GroupRef {
    type Err = GroupRefError;

    fn from_str(text: &str) -> std::result::Result<Self, GroupRefError> {
        let fail = || GroupRefError(text.to_owned());
        let (account, group_id) = match text.trim().split_once('/') {
            Some((account, group)) => (Some(account), group),
            None => (None, text.trim()),
        };
        if let Some(account) = account {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail());
            }
        }
        let digits = group_id.strip_prefix("sg-").ok_or_else(fail)?;
        if !(8..=17).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail());
        }
        Ok(GroupRef {
            account: account.map(str::to_owned),
            group_id: group_id.to_owned(),
        })
    }
}

impl fmt::Display for GroupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(account) => write!(f, "{account}/{}", self.group_id),
            None => f.write_str(&self.group_id),
        }
    }
}

/// One client that must reach the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    Cidr(Cidr),
    Group(GroupRef),
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cidr(cidr) => fmt::Display::fmt(cidr, f),
            Self::Group(group) => fmt::Display::fmt(group, f),
        }
    }
}

impl Serialize for Client {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The rule that admits a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admission {
    /// The security group whose rule it is.
    pub group: String,
    /// `sgr-…`, when AWS names it.
    pub rule: Option<String>,
    /// The rule as an operator reads it: `TCP 5432 from 10.0.0.0/16`.
    pub text: String,
}

impl fmt::Display for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(rule) => write!(f, "`{}` (rule `{rule}`: {})", self.group, self.text),
            None => write!(f, "`{}` ({})", self.group, self.text),
        }
    }
}

/// One client, and the rule that admits it (none: it could not reach the database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientReach {
    pub client: Client,
    pub admitted_by: Option<Admission>,
}

impl ClientReach {
    /// One line for the operator: ``10.0.1.0/24: admitted by `sg-…` (rule …)``.
    pub fn line(&self) -> String {
        match &self.admitted_by {
            Some(admission) => format!("{}: admitted by {admission}", self.client),
            None => format!("{}: NOT admitted", self.client),
        }
    }
}

/// Whether the chosen security groups admit TCP on the database's port from each client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReachReport {
    pub port: u16,
    pub groups: Vec<String>,
    pub clients: Vec<ClientReach>,
}

impl ReachReport {
    /// The clients no rule admits.
    pub fn not_admitted(&self) -> Vec<&Client> {
        self.clients
            .iter()
            .filter(|reach| reach.admitted_by.is_none())
            .map(|reach| &reach.client)
            .collect()
    }

    /// One line per client, for a command's text output.
    pub fn lines(&self) -> Vec<String> {
        self.clients.iter().map(ClientReach::line).collect()
    }

    /// The refusal when a client is not admitted: which clients, and the exact rule to add
    /// for each (to the first of the groups).
    pub fn refusal(&self) -> Option<Error> {
        let missing = self.not_admitted();
        if missing.is_empty() {
            return None;
        }
        let clients = missing
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!(
            "no inbound rule of {} admits TCP {} from {clients}: the restored database would not be reachable from there",
            groups_phrase(&self.groups),
            self.port
        );
        let group = self.groups.first().map(String::as_str).unwrap_or("sg-…");
        let rules = missing
            .iter()
            .map(|client| missing_rule(group, self.port, client))
            .collect::<Vec<_>>()
            .join("; ");
        Some(Error::refused(
            message,
            format!("{rules}; then re-run the same command"),
        ))
    }
}

/// ``security group `sg-1` `` or ``security groups `sg-1`, `sg-2` ``.
fn groups_phrase(groups: &[String]) -> String {
    let names = groups
        .iter()
        .map(|g| format!("`{g}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match groups.len() {
        1 => format!("security group {names}"),
        _ => format!("security groups {names}"),
    }
}

/// The inbound rule to add to `group` so that it admits TCP on `port` from `client`, with
/// the AWS CLI command that adds it.
pub fn missing_rule(group: &str, port: u16, client: &Client) -> String {
    let (source, command) = match client {
        Client::Cidr(cidr) if cidr.is_ipv6() => (
            cidr.to_string(),
            format!("--ip-permissions 'IpProtocol=tcp,FromPort={port},ToPort={port},Ipv6Ranges=[{{CidrIpv6={cidr}}}]'"),
        ),
        Client::Cidr(cidr) => (
            cidr.to_string(),
            format!("--protocol tcp --port {port} --cidr {cidr}"),
        ),
        Client::Group(GroupRef {
            account: Some(account),
            group_id,
        }) => (
            format!("security group {account}/{group_id}"),
            format!("--ip-permissions 'IpProtocol=tcp,FromPort={port},ToPort={port},UserIdGroupPairs=[{{UserId={account},GroupId={group_id}}}]'"),
        ),
        Client::Group(GroupRef { group_id, .. }) => (
            format!("security group {group_id}"),
            format!("--protocol tcp --port {port} --source-group {group_id}"),
        ),
    };
    format!(
        "add an inbound rule to `{group}`: TCP {port} from {source} (`aws ec2 authorize-security-group-ingress --group-id {group} {command}`)"
    )
}

/// The hint for a connection to the restored database that failed after the restore (the
/// data check): the rule to add for each client the connection may come from (the clients
/// the operator named, or none when unknown), and what else stands between them.
pub fn missing_rule_hint(groups: &[String], port: u16, clients: &[Client]) -> String {
    let group = groups.first().map(String::as_str).unwrap_or("sg-…");
    let rules = if clients.is_empty() {
        format!(
            "make sure an inbound rule of {} admits TCP {port} from where the connection comes from (this machine, or the bastion or port forward it goes through): `tgt-agent check` with `--client-cidr CIDR` or `--client-security-group SG` names the rule to add",
            groups_phrase(groups)
        )
    } else {
        clients
            .iter()
            .map(|client| missing_rule(group, port, client))
            .collect::<Vec<_>>()
            .join("; ")
    };
    format!(
        "{rules}; unless the database is publicly accessible, connect from inside its VPC or a network routed to it (peering, VPN, a bastion, a port forward with `--db-endpoint`), and check the subnets' network ACLs; then re-run the same command"
    )
}

/// The port the restored database listens on: the source's, from the manifest (a restore
/// keeps the snapshot's port, and `verify` checks the manifest's against AWS's), else the
/// engine's default.
pub fn database_port(database: &Database) -> Result<u16> {
    if let Some(port) = database.port.and_then(|p| u16::try_from(p).ok()) {
        return Ok(port);
    }
    default_port(&database.engine).ok_or_else(|| {
        Error::refused(
            format!(
                "the manifest names no port, and this release knows no default port for engine `{}`",
                database.engine
            ),
            "ask the source admin for a fresh export (it records the port), or check the clients' reach without `--client-cidr` and `--client-security-group`",
        )
    })
}

/// An RDS engine's default port.
pub fn default_port(engine: &str) -> Option<u16> {
    match engine {
        "postgres" | "aurora-postgresql" => Some(5432),
        "mysql" | "mariadb" | "aurora-mysql" | "aurora" => Some(3306),
        e if e.starts_with("oracle") || e.starts_with("custom-oracle") => Some(1521),
        e if e.starts_with("sqlserver") || e.starts_with("custom-sqlserver") => Some(1433),
        e if e.starts_with("db2") => Some(50000),
        _ => None,
    }
}

/// The rule carries TCP on `port`: protocol `tcp` (6) or all (`-1`), port range holding it.
fn carries_tcp(rule: &IngressRule, port: u16) -> bool {
    match rule.protocol.to_ascii_lowercase().as_str() {
        "-1" | "all" => true,
        "tcp" | "6" => {
            // Absent or -1: every port.
            let from = rule.from_port.filter(|p| *p >= 0).unwrap_or(0);
            let to = rule.to_port.filter(|p| *p >= 0).unwrap_or(65535);
            (from..=to).contains(&i32::from(port))
        }
        _ => false,
    }
}

/// The rule's protocol and ports as an operator reads them: `TCP 5432`, `all traffic`.
fn traffic(rule: &IngressRule) -> String {
    match rule.protocol.to_ascii_lowercase().as_str() {
        "-1" | "all" => "all traffic".into(),
        "tcp" | "6" => {
            let from = rule.from_port.filter(|p| *p >= 0).unwrap_or(0);
            let to = rule.to_port.filter(|p| *p >= 0).unwrap_or(65535);
            if from == to {
                format!("TCP {from}")
            } else {
                format!("TCP {from}-{to}")
            }
        }
        other => format!("protocol {other}"),
    }
}

/// The source in `rule` that admits `client`, as an operator reads it; `None` when the rule's
/// source does not admit it (ports and protocol aside).
fn admitting_source(
    rule: &IngressRule,
    prefix_lists: &BTreeMap<String, Vec<String>>,
    client: &Client,
) -> Option<String> {
    let cidrs = [&rule.cidr_ipv4, &rule.cidr_ipv6];
    match client {
        Client::Cidr(inner) => {
            for text in cidrs.into_iter().flatten() {
                if Cidr::lenient(text).is_some_and(|outer| outer.contains(inner)) {
                    return Some(text.clone());
                }
            }
            let list = rule.prefix_list_id.as_ref()?;
            prefix_lists
                .get(list)
                .into_iter()
                .flatten()
                .find(|entry| Cidr::lenient(entry).is_some_and(|outer| outer.contains(inner)))
                .map(|entry| format!("prefix list {list} (entry {entry})"))
        }
        Client::Group(group) => {
            let same_group = rule.referenced_group_id.as_deref() == Some(group.group_id.as_str());
            // A rule that names the account must name the client's, when the client says it.
            let same_account = match (&group.account, &rule.referenced_user_id) {
                (Some(wanted), Some(named)) => wanted == named,
                _ => true,
            };
            if same_group && same_account {
                let account = rule
                    .referenced_user_id
                    .as_deref()
                    .or(group.account.as_deref());
                return Some(match account {
                    Some(account) => format!("security group {account}/{}", group.group_id),
                    None => format!("security group {}", group.group_id),
                });
            }
            // Open to every address: every member of any group is in it.
            cidrs
                .into_iter()
                .flatten()
                .find(|text| Cidr::lenient(text).is_some_and(|c| c.is_everything()))
                .cloned()
        }
    }
}

/// The first of `rules` (in order) that admits TCP on `port` from `client`.
pub fn admitting(
    rules: &[IngressRule],
    prefix_lists: &BTreeMap<String, Vec<String>>,
    port: u16,
    client: &Client,
) -> Option<Admission> {
    rules
        .iter()
        .filter(|rule| carries_tcp(rule, port))
        .find_map(|rule| {
            let source = admitting_source(rule, prefix_lists, client)?;
            Some(Admission {
                group: rule.group_id.clone(),
                rule: rule.rule_id.clone(),
                text: format!("{} from {source}", traffic(rule)),
            })
        })
}

/// Judges each client against the inbound rules of `groups` (and the entries of the prefix
/// lists they reference): admitted if ANY rule of ANY group admits it.
pub fn evaluate(
    groups: &[String],
    rules: &[IngressRule],
    prefix_lists: &BTreeMap<String, Vec<String>>,
    port: u16,
    clients: &[Client],
) -> ReachReport {
    let clients = clients
        .iter()
        .map(|client| ClientReach {
            client: client.clone(),
            admitted_by: admitting(rules, prefix_lists, port, client),
        })
        .collect();
    ReachReport {
        port,
        groups: groups.to_vec(),
        clients,
    }
}

/// Reads the inbound rules of `groups` (and, where a CIDR client needs them, the entries of
/// the prefix lists they reference) and says per client whether they admit TCP on `port`;
/// refuses, naming the rule to add, when any client is not admitted. Makes no AWS call when
/// no client is named.
pub async fn check_reach(
    aws: &Aws,
    groups: &[String],
    port: u16,
    args: &ReachArgs,
    progress: &dyn Progress,
) -> Result<ReachReport> {
    let clients = args.clients()?;
    if clients.is_empty() {
        return Ok(evaluate(groups, &[], &BTreeMap::new(), port, &clients));
    }
    let rules = ec2::ingress_rules(aws, groups).await?;
    let mut prefix_lists = BTreeMap::new();
    let mut report = evaluate(groups, &rules, &prefix_lists, port, &clients);
    let cidr_missing = report
        .not_admitted()
        .iter()
        .any(|client| matches!(client, Client::Cidr(_)));
    if cidr_missing {
        // Only the lists of rules that carry the port could admit anyone.
        for rule in rules.iter().filter(|rule| carries_tcp(rule, port)) {
            if let Some(list) = &rule.prefix_list_id {
                if !prefix_lists.contains_key(list) {
                    let entries = ec2::prefix_list_entries(aws, list).await?;
                    prefix_lists.insert(list.clone(), entries);
                }
            }
        }
        report = evaluate(groups, &rules, &prefix_lists, port, &clients);
    }
    for reach in &report.clients {
        let client = reach.client.to_string();
        match &reach.admitted_by {
            Some(admission) => progress.event(&Event::step(
                "reach",
                &client,
                &format!("TCP {port} admitted by {admission}"),
            )),
            None => progress.event(&Event::warning(
                "reach",
                &client,
                &format!("TCP {port} NOT admitted by {}", groups_phrase(groups)),
            )),
        }
    }
    match report.refusal() {
        Some(err) => Err(err),
        None => Ok(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn group(text: &str) -> Client {
        Client::Group(text.parse().unwrap())
    }

    fn tcp(group: &str, from: i32, to: i32) -> IngressRule {
        IngressRule {
            group_id: group.into(),
            rule_id: Some(format!("sgr-{group}-{from}")),
            protocol: "tcp".into(),
            from_port: Some(from),
            to_port: Some(to),
            ..IngressRule::default()
        }
    }

    fn from_cidr(mut rule: IngressRule, cidr: &str) -> IngressRule {
        if cidr.contains(':') {
            rule.cidr_ipv6 = Some(cidr.into());
        } else {
            rule.cidr_ipv4 = Some(cidr.into());
        }
        rule
    }

    fn admits(rules: &[IngressRule], port: u16, client: &Client) -> Option<Admission> {
        admitting(rules, &BTreeMap::new(), port, client)
    }

    #[test]
    fn cidrs_are_read_strictly_and_said_back() {
        assert_eq!(cidr("10.0.1.0/24").to_string(), "10.0.1.0/24");
        assert_eq!(cidr("10.0.1.5").to_string(), "10.0.1.5/32");
        assert_eq!(cidr("2001:db8::/56").to_string(), "2001:db8::/56");
        assert_eq!(cidr("0.0.0.0/0").prefix(), 0);
        for (bad, says) in [
            (
                "10.0.1.5/24",
                "host bits are set: the block is `10.0.1.0/24`",
            ),
            ("10.0.1.0/33", "0 to 32"),
            ("2001:db8::/129", "0 to 128"),
            ("10.0.1/24", "as `10.0.1.0/24`"),
            ("10.0.1.0/", "as `10.0.1.0/24`"),
            ("10.0.1.0/+8", "as `10.0.1.0/24`"),
            ("sg-12345678", "as `10.0.1.0/24`"),
        ] {
            let err = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("`{bad}` is not a CIDR block: ")),
                "{err}"
            );
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn client_groups_are_an_id_or_an_account_and_an_id() {
        let plain: GroupRef = "sg-0123456789abcdef0".parse().unwrap();
        assert_eq!(plain.account, None);
        let other: GroupRef = "111122223333/sg-12345678".parse().unwrap();
        assert_eq!(other.account.as_deref(), Some("111122223333"));
        assert_eq!(other.to_string(), "111122223333/sg-12345678");
        for bad in [
            "sg-123",
            "sg-xyz45678",
            "12345/sg-12345678",
            "10.0.0.0/16",
            "vpc-12345678",
        ] {
            assert!(bad.parse::<GroupRef>().is_err(), "{bad}");
            assert!(parse_client_group(bad)
                .unwrap_err()
                .to_string()
                .contains("`sg-`"));
        }
    }

    #[test]
    fn a_cidr_rule_admits_only_clients_wholly_inside_it() {
        let rules = [from_cidr(tcp("sg-1", 5432, 5432), "10.0.0.0/16")];
        let inside = admits(&rules, 5432, &Client::Cidr(cidr("10.0.1.0/24"))).unwrap();
        assert_eq!(inside.group, "sg-1");
        assert_eq!(inside.text, "TCP 5432 from 10.0.0.0/16");
        assert_eq!(
            inside.to_string(),
            "`sg-1` (rule `sgr-sg-1-5432`: TCP 5432 from 10.0.0.0/16)"
        );
        assert!(admits(&rules, 5432, &Client::Cidr(cidr("10.0.0.0/16"))).is_some());
        assert!(admits(&rules, 5432, &Client::Cidr(cidr("10.0.255.7"))).is_some());
        // Wider than the rule, beside it, or another family: outside.
        assert!(admits(&rules, 5432, &Client::Cidr(cidr("10.0.0.0/8"))).is_none());
        assert!(admits(&rules, 5432, &Client::Cidr(cidr("10.1.0.0/24"))).is_none());
        assert!(admits(&rules, 5432, &Client::Cidr(cidr("2001:db8::/64"))).is_none());
        // A rule's CIDR with host bits (as AWS may show one) is its block.
        let sloppy = [from_cidr(tcp("sg-1", 5432, 5432), "10.0.3.4/16")];
        assert!(admits(&sloppy, 5432, &Client::Cidr(cidr("10.0.1.0/24"))).is_some());
    }

    #[test]
    fn the_port_must_be_in_the_range_and_the_protocol_tcp_or_all() {
        let client = Client::Cidr(cidr("10.0.1.0/24"));
        let range = [from_cidr(tcp("sg-1", 5000, 5500), "10.0.0.0/16")];
        assert_eq!(
            admits(&range, 5432, &client).unwrap().text,
            "TCP 5000-5500 from 10.0.0.0/16"
        );
        assert!(admits(&range, 5000, &client).is_some());
        assert!(admits(&range, 5500, &client).is_some());
        assert!(admits(&range, 5501, &client).is_none());
        assert!(admits(&range, 3306, &client).is_none());
        let mut all = from_cidr(tcp("sg-1", -1, -1), "10.0.0.0/8");
        all.protocol = "-1".into();
        assert_eq!(
            admits(&[all.clone()], 1521, &client).unwrap().text,
            "all traffic from 10.0.0.0/8"
        );
        all.from_port = None;
        all.to_port = None;
        assert!(admits(&[all], 1433, &client).is_some());
        let mut numbered = from_cidr(tcp("sg-1", 5432, 5432), "10.0.0.0/16");
        numbered.protocol = "6".into();
        assert!(admits(&[numbered], 5432, &client).is_some());
        let mut udp = from_cidr(tcp("sg-1", 5432, 5432), "10.0.0.0/16");
        udp.protocol = "udp".into();
        assert!(admits(&[udp.clone()], 5432, &client).is_none());
        udp.protocol = "17".into();
        assert!(admits(&[udp], 5432, &client).is_none());
    }

    #[test]
    fn ipv6_clients_are_judged_against_ipv6_rules() {
        let rules = [
            from_cidr(tcp("sg-1", 5432, 5432), "10.0.0.0/16"),
            from_cidr(tcp("sg-1", 5432, 5432), "2001:db8::/32"),
        ];
        let inside = admits(&rules, 5432, &Client::Cidr(cidr("2001:db8:1::/48"))).unwrap();
        assert_eq!(inside.text, "TCP 5432 from 2001:db8::/32");
        assert!(admits(&rules, 5432, &Client::Cidr(cidr("2001:db9::/48"))).is_none());
        assert!(admits(&rules, 5432, &Client::Cidr(cidr("::/0"))).is_none());
    }

    #[test]
    fn a_group_reference_admits_that_group_and_its_account_only() {
        let mut same = tcp("sg-1", 5432, 5432);
        same.referenced_group_id = Some("sg-aaaaaaaa".into());
        same.referenced_user_id = Some("222222222222".into());
        let rules = [same];
        assert_eq!(
            admits(&rules, 5432, &group("sg-aaaaaaaa")).unwrap().text,
            "TCP 5432 from security group 222222222222/sg-aaaaaaaa"
        );
        assert!(admits(&rules, 5432, &group("222222222222/sg-aaaaaaaa")).is_some());
        assert!(admits(&rules, 5432, &group("333333333333/sg-aaaaaaaa")).is_none());
        assert!(admits(&rules, 5432, &group("sg-bbbbbbbb")).is_none());
        assert!(admits(&rules, 3306, &group("sg-aaaaaaaa")).is_none());
        // A group reference says nothing of a CIDR, a narrow CIDR nothing of a group.
        assert!(admits(&rules, 5432, &Client::Cidr(cidr("10.0.1.0/24"))).is_none());
        let narrow = [from_cidr(tcp("sg-1", 5432, 5432), "10.0.0.0/8")];
        assert!(admits(&narrow, 5432, &group("sg-aaaaaaaa")).is_none());
        let open = [from_cidr(tcp("sg-1", 5432, 5432), "0.0.0.0/0")];
        assert_eq!(
            admits(&open, 5432, &group("sg-aaaaaaaa")).unwrap().text,
            "TCP 5432 from 0.0.0.0/0"
        );
    }

    #[test]
    fn a_prefix_list_rule_admits_clients_inside_an_entry() {
        let mut rule = tcp("sg-1", 5432, 5432);
        rule.prefix_list_id = Some("pl-12345678".into());
        let lists = BTreeMap::from([(
            "pl-12345678".to_owned(),
            vec!["192.168.0.0/24".to_owned(), "10.0.0.0/16".to_owned()],
        )]);
        let client = Client::Cidr(cidr("10.0.1.0/24"));
        let found = admitting(&[rule.clone()], &lists, 5432, &client).unwrap();
        assert_eq!(
            found.text,
            "TCP 5432 from prefix list pl-12345678 (entry 10.0.0.0/16)"
        );
        assert!(admitting(
            &[rule.clone()],
            &lists,
            5432,
            &Client::Cidr(cidr("172.16.0.0/24"))
        )
        .is_none());
        // Entries not read: nothing admitted by the list.
        assert!(admitting(&[rule.clone()], &BTreeMap::new(), 5432, &client).is_none());
        assert!(admitting(&[rule], &lists, 5432, &group("sg-aaaaaaaa")).is_none());
    }

    #[test]
    fn any_group_admitting_is_enough_and_the_refusal_names_the_rule_to_add() {
        let groups = vec!["sg-1".to_owned(), "sg-2".to_owned()];
        let rules = [
            from_cidr(tcp("sg-1", 22, 22), "10.0.0.0/16"),
            from_cidr(tcp("sg-2", 5432, 5432), "10.0.0.0/16"),
        ];
        let clients = [
            Client::Cidr(cidr("10.0.1.0/24")),
            Client::Cidr(cidr("10.1.0.0/24")),
            Client::Cidr(cidr("2001:db8::/64")),
            group("sg-aaaaaaaa"),
            group("222222222222/sg-bbbbbbbb"),
        ];
        let report = evaluate(&groups, &rules, &BTreeMap::new(), 5432, &clients);
        assert_eq!(
            report.clients[0].admitted_by.as_ref().unwrap().group,
            "sg-2"
        );
        assert_eq!(report.not_admitted().len(), 4);
        assert_eq!(report.lines()[1], "10.1.0.0/24: NOT admitted");
        let err = report.refusal().unwrap();
        assert_eq!(err.exit_code(), crate::ExitCode::Refused);
        assert_eq!(
            err.to_string(),
            "no inbound rule of security groups `sg-1`, `sg-2` admits TCP 5432 from `10.1.0.0/24`, `2001:db8::/64`, `sg-aaaaaaaa`, `222222222222/sg-bbbbbbbb`: the restored database would not be reachable from there"
        );
        let hint = err.hint().unwrap();
        for rule in [
            "add an inbound rule to `sg-1`: TCP 5432 from 10.1.0.0/24 (`aws ec2 authorize-security-group-ingress --group-id sg-1 --protocol tcp --port 5432 --cidr 10.1.0.0/24`)",
            "add an inbound rule to `sg-1`: TCP 5432 from 2001:db8::/64 (`aws ec2 authorize-security-group-ingress --group-id sg-1 --ip-permissions 'IpProtocol=tcp,FromPort=5432,ToPort=5432,Ipv6Ranges=[{CidrIpv6=2001:db8::/64}]'`)",
            "add an inbound rule to `sg-1`: TCP 5432 from security group sg-aaaaaaaa (`aws ec2 authorize-security-group-ingress --group-id sg-1 --protocol tcp --port 5432 --source-group sg-aaaaaaaa`)",
            "UserIdGroupPairs=[{UserId=222222222222,GroupId=sg-bbbbbbbb}]",
        ] {
            assert!(hint.contains(rule), "{rule}\nin: {hint}");
        }
        assert!(hint.ends_with("; then re-run the same command"), "{hint}");
        let admitted = evaluate(&groups, &rules, &BTreeMap::new(), 5432, &clients[..1]);
        assert!(admitted.refusal().is_none());
        assert_eq!(
            admitted.lines(),
            ["10.0.1.0/24: admitted by `sg-2` (rule `sgr-sg-2-5432`: TCP 5432 from 10.0.0.0/16)"]
        );
    }

    #[test]
    fn the_args_give_each_client_once() {
        let args = ReachArgs {
            client_cidrs: vec![cidr("10.0.1.0/24"), cidr("10.0.1.0/24")],
            client_security_groups: vec!["sg-12345678".into(), "sg-12345678".into()],
        };
        assert!(!args.is_empty());
        assert_eq!(
            args.clients().unwrap(),
            [Client::Cidr(cidr("10.0.1.0/24")), group("sg-12345678")]
        );
        assert!(ReachArgs::default().is_empty());
        let wrong = ReachArgs {
            client_security_groups: vec!["default".into()],
            ..ReachArgs::default()
        };
        assert_eq!(
            wrong.clients().unwrap_err().exit_code(),
            crate::ExitCode::Usage
        );
    }

    #[test]
    fn the_flags_are_read_by_clap() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            reach: ReachArgs,
        }
        let cli = Cli::try_parse_from([
            "check",
            "--client-cidr",
            "10.0.1.0/24",
            "--client-cidr",
            "2001:db8::/56",
            "--client-security-group",
            "111122223333/sg-12345678",
        ])
        .unwrap();
        assert_eq!(cli.reach.client_cidrs.len(), 2);
        assert_eq!(
            cli.reach.client_security_groups,
            ["111122223333/sg-12345678"]
        );
        let err = Cli::try_parse_from(["check", "--client-cidr", "10.0.1.5/24"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("host bits are set: the block is `10.0.1.0/24`"),
            "{err}"
        );
        assert!(Cli::try_parse_from(["check", "--client-security-group", "web"]).is_err());
    }

    #[test]
    fn the_port_is_the_manifests_else_the_engines_default() {
        for (engine, port) in [
            ("postgres", 5432),
            ("aurora-postgresql", 5432),
            ("mysql", 3306),
            ("mariadb", 3306),
            ("aurora-mysql", 3306),
            ("oracle-ee", 1521),
            ("sqlserver-se", 1433),
        ] {
            assert_eq!(default_port(engine), Some(port), "{engine}");
        }
        assert_eq!(default_port("neptune"), None);
    }

    #[test]
    fn a_failed_connection_names_the_rule_or_how_to_find_it() {
        let groups = ["sg-1".to_owned()];
        let known = missing_rule_hint(&groups, 3306, &[Client::Cidr(cidr("10.0.1.0/24"))]);
        assert!(
            known.starts_with("add an inbound rule to `sg-1`: TCP 3306 from 10.0.1.0/24"),
            "{known}"
        );
        assert!(
            known.contains("unless the database is publicly accessible"),
            "{known}"
        );
        let unknown = missing_rule_hint(&groups, 3306, &[]);
        assert!(
            unknown
                .starts_with("make sure an inbound rule of security group `sg-1` admits TCP 3306"),
            "{unknown}"
        );
        assert!(unknown.contains("--client-cidr CIDR"), "{unknown}");
    }
}
