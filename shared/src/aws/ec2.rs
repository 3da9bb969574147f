//! EC2 calls: the inbound rules of security groups and the entries of managed prefix lists,
//! every page, as plain data for the reachability check ([`crate::flows::reach`]) to judge.
//! The agents never change a security group: these are read-only describes.

use aws_sdk_ec2::types::{Filter, SecurityGroupRule};

use crate::aws::Aws;
use crate::base::error::{sdk, Result};

/// One inbound rule of a security group, as `ec2:DescribeSecurityGroupRules` gives it: one
/// protocol and port range, from exactly one source (an IPv4 or IPv6 CIDR, a prefix list or a
/// referenced security group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngressRule {
    /// The security group the rule belongs to.
    pub group_id: String,
    /// `sgr-…`, when AWS names it.
    pub rule_id: Option<String>,
    /// `tcp`, `udp`, `icmp`, a protocol number, or `-1` for every protocol.
    pub protocol: String,
    /// The port range (`-1` or absent: every port).
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    /// `pl-…`: the rule admits every CIDR of the prefix list's entries.
    pub prefix_list_id: Option<String>,
    /// `sg-…`: the rule admits network interfaces in that group.
    pub referenced_group_id: Option<String>,
    /// The account of the referenced group (cross-account references: `UserId/GroupId`).
    pub referenced_user_id: Option<String>,
    pub description: Option<String>,
}

impl IngressRule {
    fn of(rule: &SecurityGroupRule) -> Self {
        let referenced = rule.referenced_group_info();
        Self {
            group_id: rule.group_id().unwrap_or_default().to_owned(),
            rule_id: rule.security_group_rule_id().map(str::to_owned),
            protocol: rule.ip_protocol().unwrap_or("-1").to_owned(),
            from_port: rule.from_port(),
            to_port: rule.to_port(),
            cidr_ipv4: rule.cidr_ipv4().map(str::to_owned),
            cidr_ipv6: rule.cidr_ipv6().map(str::to_owned),
            prefix_list_id: rule.prefix_list_id().map(str::to_owned),
            referenced_group_id: referenced.and_then(|r| r.group_id()).map(str::to_owned),
            referenced_user_id: referenced.and_then(|r| r.user_id()).map(str::to_owned),
            description: rule.description().map(str::to_owned),
        }
    }
}

/// Every inbound rule of `groups`, all pages, in the order the groups are given (then by rule
/// id, so a decision between two rules that both admit a client is the same on every run).
/// A group that does not exist has no rules here: [`crate::flows::preflight`] checks they do.
pub async fn ingress_rules(aws: &Aws, groups: &[String]) -> Result<Vec<IngressRule>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let filter = Filter::builder()
        .name("group-id")
        .set_values(Some(groups.to_vec()))
        .build();
    let mut found = Vec::new();
    let mut pages = aws
        .ec2
        .describe_security_group_rules()
        .filters(filter)
        .into_paginator()
        .page_size(1000)
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("ec2:DescribeSecurityGroupRules"))?;
        found.extend(
            page.security_group_rules()
                .iter()
                .filter(|rule| rule.is_egress() != Some(true))
                .map(IngressRule::of),
        );
    }
    let rank = |rule: &IngressRule| groups.iter().position(|g| *g == rule.group_id);
    found.sort_by(|a, b| (rank(a), a.rule_id.as_deref()).cmp(&(rank(b), b.rule_id.as_deref())));
    Ok(found)
}

/// The CIDRs of a managed prefix list's current entries, all pages.
pub async fn prefix_list_entries(aws: &Aws, prefix_list_id: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pages = aws
        .ec2
        .get_managed_prefix_list_entries()
        .prefix_list_id(prefix_list_id)
        .into_paginator()
        .page_size(100)
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("ec2:GetManagedPrefixListEntries"))?;
        found.extend(
            page.entries()
                .iter()
                .filter_map(|entry| entry.cidr().map(str::to_owned)),
        );
    }
    Ok(found)
}
