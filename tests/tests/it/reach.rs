//! "Clients can reach it" (issue 24, item 5): `tgt-agent check --client-cidr CIDR
//! --client-security-group SG` says whether the security groups the import would use admit TCP
//! on the database's port from each client (CIDR, security-group and prefix-list rules, as
//! moto returns them from `DescribeSecurityGroupRules` and `GetManagedPrefixListEntries`), and
//! refuses before anything is made, naming the inbound rule to add.

use aws_sdk_ec2::types::{
    AddPrefixListEntry, IpPermission, IpRange, Ipv6Range, PrefixListId, UserIdGroupPair,
};
use e2e::agents::sha_of;
use e2e::fixtures::{footprint, mysql_instance, network, placed_instance, Network};
use e2e::{Account, Agent, Run, Workdir, SOURCE, TARGET};

use crate::common::{accounts, export};

/// An exported instance, the target's network, and EC2 in the target to shape its groups.
struct Setup {
    db: &'static str,
    wd: Workdir,
    target: Account,
    net: Network,
    ec2: aws_sdk_ec2::Client,
    vpc: String,
}

impl Setup {
    /// `db` exported to the target: a MySQL instance on 3306, or, `placed`, one on port 3307.
    async fn new(db: &'static str, placed: bool) -> Setup {
        let (source, target) = accounts().await;
        let wd = Workdir::new(db);
        if placed {
            placed_instance(&source, db).await;
        } else {
            mysql_instance(&source, db, false).await;
        }
        export(&wd, &source, "--db-instance", db, &[]).await.ok();
        let net = network(&target);
        let ec2 = aws_sdk_ec2::Client::new(&target.config());
        let found = ec2
            .describe_security_groups()
            .group_ids(&net.security_group)
            .send()
            .await
            .unwrap();
        let vpc = found.security_groups()[0].vpc_id().unwrap().to_owned();
        Setup {
            db,
            wd,
            target,
            net,
            ec2,
            vpc,
        }
    }

    /// A new security group in the subnet group's VPC, without inbound rules.
    async fn group(&self, name: &str) -> String {
        let made = self
            .ec2
            .create_security_group()
            .group_name(format!("{}-{name}", self.db))
            .description("rds-handoff reach tests")
            .vpc_id(&self.vpc)
            .send()
            .await
            .unwrap();
        made.group_id().unwrap().to_owned()
    }

    async fn allow(&self, group: &str, permission: IpPermission) {
        self.ec2
            .authorize_security_group_ingress()
            .group_id(group)
            .ip_permissions(permission)
            .send()
            .await
            .unwrap_or_else(|e| panic!("authorize {group}: {e:?}"));
    }

    /// `tgt-agent check` of the export into `groups`, `extra` appended.
    async fn check(&self, groups: &[&str], extra: &[&str]) -> Run {
        self.run("check", groups, extra).await
    }

    /// `tgt-agent VERB` (`check` or `import`) of the export into `groups`, `extra` appended.
    async fn run(&self, verb: &str, groups: &[&str], extra: &[&str]) -> Run {
        let manifest = format!("{}.handoff.json", self.db);
        let sha = sha_of(self.wd.path(), &manifest);
        let mut args = vec![
            verb,
            manifest.as_str(),
            "--source-account",
            SOURCE,
            "--manifest-sha256",
            sha.as_str(),
            "--db-subnet-group-name",
            self.net.subnet_group.as_str(),
            "--vpc-security-group-ids",
        ];
        args.extend_from_slice(groups);
        args.extend_from_slice(extra);
        self.wd.run(Agent::Tgt, &self.target, &args).await
    }
}

/// TCP on `port` only.
fn tcp(port: i32) -> aws_sdk_ec2::types::builders::IpPermissionBuilder {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
}

fn from_cidr(block: &str) -> IpRange {
    IpRange::builder().cidr_ip(block).build()
}

#[tokio::test]
async fn a_group_without_the_port_refuses_before_anything_is_made() {
    // The source listens on 3307: the engine's default port is not the one that matters.
    let s = Setup::new("rch-port", true).await;
    let db = s.group("db").await;
    s.allow(&db, tcp(3306).ip_ranges(from_cidr("10.0.0.0/16")).build())
        .await;
    s.allow(&db, tcp(22).ip_ranges(from_cidr("10.0.0.0/16")).build())
        .await;
    let before = footprint(&s.target, "rch-port").await;
    s.check(&[db.as_str()], &["--client-cidr", "10.0.1.5/24"])
        .await
        .refused(2, "host bits are set: the block is `10.0.1.0/24`");
    let run = s
        .check(&[db.as_str()], &["--client-cidr", "10.0.1.0/24"])
        .await
        .refused(
            3,
            &format!("no inbound rule of security group `{db}` admits TCP 3307 from `10.0.1.0/24`"),
        );
    let rule = format!(
        "add an inbound rule to `{db}`: TCP 3307 from 10.0.1.0/24 (`aws ec2 authorize-security-group-ingress --group-id {db} --protocol tcp --port 3307 --cidr 10.0.1.0/24`)"
    );
    assert!(run.stderr.contains(&rule), "{}", run.stderr);
    let import = s
        .run("import", &[db.as_str()], &["--client-cidr", "10.0.1.0/24"])
        .await
        .refused(3, "admits TCP 3307 from `10.0.1.0/24`");
    assert!(import.stderr.contains(&rule), "{}", import.stderr);
    assert_eq!(
        footprint(&s.target, "rch-port").await,
        before,
        "nothing made in the target, by check or import"
    );
    // The rule the hint names is the rule that was missing.
    s.allow(&db, tcp(3307).ip_ranges(from_cidr("10.0.1.0/24")).build())
        .await;
    let run = s
        .check(&[db.as_str()], &["--client-cidr", "10.0.1.0/24"])
        .await
        .ok();
    assert!(run.stdout.contains("ready to import"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("10.0.1.0/24: admitted by `{db}` (rule `sgr-")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("TCP 3307 from 10.0.1.0/24)"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_rule_on_the_port_from_a_wider_block_admits_the_client_in_any_group() {
    let s = Setup::new("rch-cidr", false).await;
    let (empty, db, all) = (
        s.group("empty").await,
        s.group("db").await,
        s.group("all").await,
    );
    s.allow(
        &db,
        tcp(3306)
            .ip_ranges(from_cidr("10.0.0.0/16"))
            .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("2001:db8::/32").build())
            .build(),
    )
    .await;
    s.allow(
        &all,
        IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(from_cidr("192.168.0.0/16"))
            .build(),
    )
    .await;
    let clients = [
        "--client-cidr",
        "10.0.1.0/24",
        "--client-cidr",
        "2001:db8:1::/48",
        "--client-cidr",
        "192.168.5.0/24",
    ];
    let run = s
        .check(&[empty.as_str(), db.as_str(), all.as_str()], &clients)
        .await
        .ok();
    for admitted in [
        format!("10.0.1.0/24: admitted by `{db}`"),
        "TCP 3306 from 10.0.0.0/16".to_owned(),
        format!("2001:db8:1::/48: admitted by `{db}`"),
        "TCP 3306 from 2001:db8::/32".to_owned(),
        format!("192.168.5.0/24: admitted by `{all}`"),
        "all traffic from 192.168.0.0/16".to_owned(),
    ] {
        assert!(run.stdout.contains(&admitted), "{admitted}\n{}", run.stdout);
    }
    // Outside the block, or the block wider than the rule's: refused, the rule for the first group.
    for outside in ["10.1.0.0/24", "10.0.0.0/8"] {
        let run = s
            .check(
                &[empty.as_str(), db.as_str()],
                &["--client-cidr", "10.0.1.0/24", "--client-cidr", outside],
            )
            .await
            .refused(
                3,
                &format!("security groups `{empty}`, `{db}` admits TCP 3306 from `{outside}`:"),
            );
        assert!(
            run.stderr.contains(&format!(
                "add an inbound rule to `{empty}`: TCP 3306 from {outside}"
            )),
            "{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("TCP 3306 from 10.0.1.0/24"),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn a_rule_referencing_the_client_group_admits_its_members() {
    let s = Setup::new("rch-group", false).await;
    let (db, app) = (s.group("db").await, s.group("app").await);
    s.allow(
        &db,
        tcp(3306)
            .user_id_group_pairs(UserIdGroupPair::builder().group_id(&app).build())
            .build(),
    )
    .await;
    let qualified = format!("{TARGET}/{app}");
    for client in [app.as_str(), qualified.as_str()] {
        let run = s
            .check(&[db.as_str()], &["--client-security-group", client])
            .await
            .ok();
        assert!(
            run.stdout
                .contains(&format!("{client}: admitted by `{db}`"))
                && run
                    .stdout
                    .contains(&format!("TCP 3306 from security group {TARGET}/{app})")),
            "{}",
            run.stdout
        );
    }
    let other = s.net.security_group.clone();
    let run = s
        .check(
            &[db.as_str()],
            &[
                "--client-security-group",
                app.as_str(),
                "--client-security-group",
                other.as_str(),
            ],
        )
        .await
        .refused(3, &format!("admits TCP 3306 from `{other}`"));
    assert!(
        run.stderr.contains(&format!(
            "add an inbound rule to `{db}`: TCP 3306 from security group {other} (`aws ec2 authorize-security-group-ingress --group-id {db} --protocol tcp --port 3306 --source-group {other}`)"
        )),
        "{}",
        run.stderr
    );
    // A group of another account is not this one, whatever its id.
    let elsewhere = format!("444455556666/{app}");
    s.check(
        &[db.as_str()],
        &["--client-security-group", elsewhere.as_str()],
    )
    .await
    .refused(3, "UserIdGroupPairs=[{UserId=444455556666,");
}

#[tokio::test]
async fn a_prefix_list_rule_admits_clients_inside_its_entries() {
    let s = Setup::new("rch-list", false).await;
    let db = s.group("db").await;
    let list = s
        .ec2
        .create_managed_prefix_list()
        .prefix_list_name("rch-clients")
        .address_family("IPv4")
        .max_entries(5)
        .entries(AddPrefixListEntry::builder().cidr("172.31.0.0/24").build())
        .entries(AddPrefixListEntry::builder().cidr("10.0.0.0/16").build())
        .send()
        .await
        .unwrap();
    let list = list
        .prefix_list()
        .unwrap()
        .prefix_list_id()
        .unwrap()
        .to_owned();
    s.allow(
        &db,
        tcp(3306)
            .prefix_list_ids(PrefixListId::builder().prefix_list_id(&list).build())
            .build(),
    )
    .await;
    let run = s
        .check(&[db.as_str()], &["--client-cidr", "10.0.1.0/24"])
        .await
        .ok();
    assert!(
        run.stdout
            .contains(&format!("10.0.1.0/24: admitted by `{db}`"))
            && run.stdout.contains(&format!(
                "TCP 3306 from prefix list {list} (entry 10.0.0.0/16)"
            )),
        "{}",
        run.stdout
    );
    s.check(&[db.as_str()], &["--client-cidr", "172.16.0.0/24"])
        .await
        .refused(
            3,
            &format!("add an inbound rule to `{db}`: TCP 3306 from 172.16.0.0/24"),
        );
}
